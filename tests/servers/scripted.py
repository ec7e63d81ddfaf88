"""What the local model servers share: a threaded HTTP server on 127.0.0.1 whose answers the
test scripts per model, and a record of every request it received."""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, TypeVar


class _Script(Protocol):
    times: int | None  # how many requests it answers; None: all


ScriptT = TypeVar("ScriptT", bound=_Script)
ReceivedT = TypeVar("ReceivedT")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping an idle keep-alive connection is normal, not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedServer(Generic[ScriptT, ReceivedT]):
    """Subclasses set `script_type` (a dataclass with a `times` field), `name`, and `model_of`."""

    script_type: type
    name = "model-server"

    def __init__(self, handler_for: Callable[[Any], type[BaseHTTPRequestHandler]]) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, ScriptT] = {}
        self.requests: list[ReceivedT] = []
        self._httpd = QuietServer(("127.0.0.1", 0), handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=self.name, daemon=True)

    @staticmethod
    def model_of(received: ReceivedT) -> str:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, model: str, **behaviour: Any) -> ScriptT:
        scripted = self.script_type(**behaviour)
        with self._lock:
            self._scripts[model] = scripted
        return scripted

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    def requests_for(self, model: str) -> list[ReceivedT]:
        with self._lock:
            return [r for r in self.requests if self.model_of(r) == model]

    def last_request(self, model: str) -> ReceivedT:
        found = self.requests_for(model)
        assert found, f"the {self.name} received no request for {model!r}"
        return found[-1]

    def _take_script(self, model: str) -> ScriptT:
        with self._lock:
            scripted = self._scripts.get(model)
            if scripted is None:
                return self.script_type()
            if scripted.times is not None:
                scripted.times -= 1
                if scripted.times <= 0:
                    del self._scripts[model]
            return scripted

    def _record(self, received: ReceivedT) -> None:
        with self._lock:
            self.requests.append(received)
