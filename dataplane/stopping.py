"""Why a running turn must stop before the model has finished.

Three reasons, checked between chunks: the door cancelled it (a `threading.Event`, set by the
Channels door or a client that went away), a cancel marker appeared in the store (how a cancel
published in one Lambda invocation reaches the invocation streaming the turn), or the
invocation's time is nearly up (Lambda kills a function at its timeout, with no `finally`;
stopping early leaves time to settle, record and tell the user).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from dataplane.errors import StoreUnavailableError

logger = logging.getLogger("dataplane.stopping")

StopReason = Literal["cancelled", "out_of_time"]

# A store read per chunk would cost more than the chunk; twice a second stops a turn within
# about one chunk of a typical stream and costs at most a few reads per answer.
CANCEL_POLL_SECONDS = 0.5
# What a turn needs after it stops: settle (one transaction), the last events (one publish),
# telemetry (one Firehose put), each with retries; a model that stalls between two checks
# eats into it too, so it is generous.
DEADLINE_MARGIN_MS = 10_000


class TurnStop:
    def __init__(
        self,
        *,
        cancel: threading.Event | None = None,
        cancelled_in_store: Callable[[], bool] | None = None,
        remaining_ms: Callable[[], int] | None = None,
        margin_ms: int = DEADLINE_MARGIN_MS,
        poll_seconds: float = CANCEL_POLL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cancel = cancel or threading.Event()
        self._cancelled_in_store = cancelled_in_store
        self._remaining_ms = remaining_ms
        self.margin_ms = margin_ms
        self._poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._last_poll = monotonic()

    def out_of_time(self) -> bool:
        return self._remaining_ms is not None and self._remaining_ms() <= self.margin_ms

    def reason(self) -> StopReason | None:
        if self.cancel.is_set():
            return "cancelled"
        if self.out_of_time():
            return "out_of_time"
        if self._cancelled_in_store is not None and self._monotonic() - self._last_poll >= self._poll_seconds:
            self._last_poll = self._monotonic()
            try:
                if self._cancelled_in_store():
                    self.cancel.set()
                    return "cancelled"
            except StoreUnavailableError as error:
                # Not seeing a cancel costs tokens, never correctness: keep streaming.
                logger.warning("cancel check failed: %s", error.message)
        return None
