"""Pytest plugin: a local server that speaks Bedrock's ConverseStream wire protocol.

`POST /model/<modelId>/converse-stream` answers with the real AWS binary event-stream framing
(`application/vnd.amazon.eventstream`, chunked), so boto3's own parser (botocore.eventstream)
decodes it exactly as it decodes AWS. Scenarios are scripted per model id from the test:

    bedrock_server.script("m", chunks=["Hel", "lo"], usage=(12, 2))
    bedrock_server.script("m", status=429)                        # HTTP error before the stream
    bedrock_server.script("m", chunks=[...], fail_after=2, error_code="throttlingException")
    bedrock_server.script("m", chunks=[...], fail_after=2)        # connection drops after 2 chunks

Guardrails: a request with `guardrailConfig` is checked like Bedrock checks it (identifier,
version, streamProcessingMode) and gets a guardrail trace in its metadata. The local guardrail
intervenes on input that tries a prompt attack (`PROMPT_ATTACK`), or as scripted:

    bedrock_server.script("m", guardrail="block_input")    # nothing reaches the model
    bedrock_server.script("m", chunks=[...], guardrail="block_output", fail_after=None)
    bedrock_server.script("m", chunks=[...], guardrail="anonymize")   # PII masked, not blocked

`POST /guardrail/<id>/version/<v>/apply` (ApplyGuardrail) runs the same local guardrail on
one text: it blocks a prompt attack, masks the name "Hong Gildong" as {NAME}, and blocks any
text containing BLOCKED_OUTPUT. Calls are recorded in `bedrock_server.guardrail_calls`.

An intervention answers like Bedrock: the guardrail's blocked message as the content, stop
reason `guardrail_intervened`, and usage for what was processed.

An unscripted model answers "Echo: <last user text>" with honest token counts
(`dataplane.tokens`). Every request is recorded (`bedrock_server.requests`), with its parsed
JSON body and what the server managed to stream (`chunks_sent`, `client_disconnected`,
`finished`).

The server is session-scoped; scripts and records persist until `bedrock_server.reset()`.
Use a model id of your own per test, or reset.
"""
from __future__ import annotations

import binascii
import json
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

import pytest

from dataplane import tokens
from dataplane.providers.base import GUARDRAIL_BLOCKED_MESSAGE
from tests.servers.scripted import ScriptedServer

# What the local guardrail takes for a prompt attack (Bedrock's PROMPT_ATTACK filter).
PROMPT_ATTACK = "ignore all previous instructions"
# What the local guardrail blocks in an answer checked with ApplyGuardrail.
BLOCKED_OUTPUT = "how to build a weapon"
MASKED_NAME = "Hong Gildong"

# What an HTTP status means when a test does not name the error code.
DEFAULT_ERROR_CODES: dict[int, str] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelNotReadyException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# --- event-stream encoding -------------------------------------------------------------------

_STRING_HEADER = 7


def _encode_headers(headers: dict[str, str]) -> bytes:
    encoded = b""
    for name, value in headers.items():
        name_bytes = name.encode("utf-8")
        value_bytes = value.encode("utf-8")
        encoded += struct.pack(">B", len(name_bytes)) + name_bytes
        encoded += struct.pack(">BH", _STRING_HEADER, len(value_bytes)) + value_bytes
    return encoded


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32 of those 8
    bytes), headers, payload, then the CRC32 of everything before it."""
    header_bytes = _encode_headers(headers)
    total_length = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total_length, len(header_bytes))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def encode_event(event_type: str, body: dict) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(body).encode("utf-8"))


def encode_exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode("utf-8"))


# --- scripting and records -------------------------------------------------------------------


@dataclass
class BedrockScript:
    chunks: list[str] | None = None  # None: the echo answer
    usage: tuple[int, int] | None = None  # None: honest estimate of request and chunks
    stop_reason: str = "end_turn"
    fail_after: int | None = None  # chunks sent before failing mid-stream
    error_code: str | None = None  # exception event code (mid-stream) or x-amzn-ErrorType
    status: int | None = None  # HTTP error status before the stream starts
    chunk_delay: float = 0.0
    send_usage: bool = True
    latency_ms: int = 42
    times: int | None = None  # how many requests it answers; None: all
    guardrail: str | None = None  # None | "block_input" | "block_output" | "anonymize"
    # Tool calls streamed after the text: (toolUseId, name, the input's JSON in pieces); the
    # answer then stops with "tool_use".
    tool_uses: list[tuple[str, str, list[str]]] = field(default_factory=list)


@dataclass
class ReceivedRequest:
    model_id: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    client_disconnected: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def system(self) -> list[dict] | None:
        return self.body.get("system")

    @property
    def inference_config(self) -> dict | None:
        return self.body.get("inferenceConfig")

    @property
    def guardrail_config(self) -> dict | None:
        return self.body.get("guardrailConfig")


class BedrockServer(ScriptedServer[BedrockScript, ReceivedRequest]):
    script_type = BedrockScript
    name = "Bedrock server"

    def __init__(self) -> None:
        super().__init__(_handler_for)
        self.guardrail_calls: list[dict[str, Any]] = []

    def reset(self) -> None:
        super().reset()
        self.guardrail_calls.clear()

    @staticmethod
    def model_of(received: ReceivedRequest) -> str:
        return received.model_id


def _echo_chunks(body: dict) -> list[str]:
    last_user = next((m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), None)
    said = tokens.content_text(last_user.get("content")) if last_user else ""
    words = f"Echo: {said}".split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _handler_for(server: BedrockServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # keep pytest output clean

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            segments = self.path.split("?")[0].split("/")
            if len(segments) == 6 and (segments[1], segments[3], segments[5]) == ("guardrail", "version", "apply"):
                self._apply_guardrail(unquote(segments[2]), unquote(segments[4]), json.loads(raw_body or b"{}"))
                return
            # /model/<modelId>/converse-stream, with modelId percent-encoded by boto3
            if len(segments) != 4 or segments[1] != "model" or segments[3] != "converse-stream":
                self._send_error(404, "UnknownOperationException", f"no route for {self.path}")
                return
            body = json.loads(raw_body or b"{}")
            received = ReceivedRequest(
                model_id=unquote(segments[2]), path=self.path, headers=dict(self.headers.items()), body=body
            )
            server._record(received)
            try:
                self._answer(server._take_script(received.model_id), received)
            finally:
                received.finished.set()

        def _apply_guardrail(self, guardrail_id: str, version: str, body: dict) -> None:
            text = "".join(block.get("text", {}).get("text", "") for block in body.get("content", []))
            server.guardrail_calls.append({"guardrail": guardrail_id, "version": version, "source": body.get("source"),
                                           "text": text})
            assessment: dict[str, Any] = {}
            blocked = (
                body.get("source") == "INPUT" and PROMPT_ATTACK in text.lower()
            ) or BLOCKED_OUTPUT in text.lower()
            if blocked:
                assessment["contentPolicy"] = {
                    "filters": [{"type": "PROMPT_ATTACK", "confidence": "HIGH", "action": "BLOCKED"}]
                }
            if MASKED_NAME in text:
                assessment["sensitiveInformationPolicy"] = {
                    "piiEntities": [{"match": MASKED_NAME, "type": "NAME", "action": "ANONYMIZED"}]}
            intervened = blocked or MASKED_NAME in text
            output = GUARDRAIL_BLOCKED_MESSAGE if blocked else text.replace(MASKED_NAME, "{NAME}")
            units = dict.fromkeys(
                (
                    "topicPolicyUnits",
                    "contentPolicyUnits",
                    "wordPolicyUnits",
                    "sensitiveInformationPolicyUnits",
                    "sensitiveInformationPolicyFreeUnits",
                    "contextualGroundingPolicyUnits",
                ),
                1,
            )
            payload = json.dumps({
                "usage": units,
                "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
                "outputs": [{"text": output}] if intervened else [],
                "assessments": [assessment],
            }).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, scripted: BedrockScript, received: ReceivedRequest) -> None:
            problem = _guardrail_config_problem(received.guardrail_config)
            if problem:
                self._send_error(400, "ValidationException", problem)
                return
            if scripted.status is not None:
                code = scripted.error_code or DEFAULT_ERROR_CODES.get(scripted.status, "InternalServerException")
                self._send_error(scripted.status, code, f"scripted {code}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.amazon.eventstream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("x-amzn-RequestId", "local-bedrock-request")
            self.end_headers()
            try:
                completed = self._stream(scripted, received)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                received.client_disconnected = True
                self.close_connection = True
                return
            if completed:
                self.wfile.write(b"0\r\n\r\n")
            else:  # drop the connection without the terminating chunk
                self.close_connection = True

        def _stream(self, scripted: BedrockScript, received: ReceivedRequest) -> bool:
            chunks = scripted.chunks if scripted.chunks is not None else _echo_chunks(received.body)
            self._write(encode_event("messageStart", {"role": "assistant"}))
            intervention = _intervention(scripted, received)
            if intervention is not None:
                return self._intervene(intervention, chunks, received)
            for index, chunk in enumerate(chunks):
                if scripted.fail_after is not None and index >= scripted.fail_after:
                    return self._fail(scripted)
                if index and scripted.chunk_delay:
                    time.sleep(scripted.chunk_delay)
                self._write(encode_event("contentBlockDelta", {"delta": {"text": chunk}, "contentBlockIndex": 0}))
                received.chunks_sent += 1
            if scripted.fail_after is not None and scripted.fail_after >= len(chunks):
                return self._fail(scripted)
            self._write(encode_event("contentBlockStop", {"contentBlockIndex": 0}))
            for offset, (tool_use_id, name, pieces) in enumerate(scripted.tool_uses):
                index = 1 + offset
                start = {"start": {"toolUse": {"toolUseId": tool_use_id, "name": name}}, "contentBlockIndex": index}
                self._write(encode_event("contentBlockStart", start))
                for piece in pieces:
                    delta = {"delta": {"toolUse": {"input": piece}}, "contentBlockIndex": index}
                    self._write(encode_event("contentBlockDelta", delta))
                self._write(encode_event("contentBlockStop", {"contentBlockIndex": index}))
                chunks = [*chunks, *pieces]  # the input is output too
            stop_reason = "tool_use" if scripted.tool_uses else scripted.stop_reason
            self._write(encode_event("messageStop", {"stopReason": stop_reason}))
            if scripted.send_usage:
                input_tokens, output_tokens = scripted.usage or (
                    tokens.estimate_messages(received.messages, _system_text(received.system)),
                    tokens.estimate("".join(chunks)),
                )
                self._write_metadata(scripted, received, input_tokens, output_tokens, _trace(scripted, received))
            return True

        def _write_metadata(
            self, scripted: BedrockScript, received: ReceivedRequest, input_tokens: int, output_tokens: int,
            trace: dict | None,
        ) -> None:
            usage = {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            }
            metadata: dict[str, Any] = {"usage": usage, "metrics": {"latencyMs": scripted.latency_ms}}
            if trace is not None:
                metadata["trace"] = trace
            self._write(encode_event("metadata", metadata))

        def _intervene(self, where: str, chunks: list[str], received: ReceivedRequest) -> bool:
            """Bedrock's answer to a blocked request or answer: the blocked message as content,
            `guardrail_intervened`, usage for what was processed (no output when the input was
            blocked: the model never ran) and the assessment in the trace."""
            sent: list[str] = []
            if where == "output":  # the model ran; the guardrail stops its answer after one chunk
                sent = chunks[:1]
                for chunk in sent:
                    self._write(encode_event("contentBlockDelta", {"delta": {"text": chunk}, "contentBlockIndex": 0}))
                    received.chunks_sent += 1
            self._write(
                encode_event(
                    "contentBlockDelta", {"delta": {"text": GUARDRAIL_BLOCKED_MESSAGE}, "contentBlockIndex": 0}
                )
            )
            self._write(encode_event("contentBlockStop", {"contentBlockIndex": 0}))
            self._write(encode_event("messageStop", {"stopReason": "guardrail_intervened"}))
            input_tokens = tokens.estimate_messages(received.messages, _system_text(received.system))
            output_tokens = tokens.estimate("".join(sent)) if sent else 0
            self._write_metadata(
                BedrockScript(), received, input_tokens, output_tokens, _blocked_trace(received, where)
            )
            return True

        def _fail(self, scripted: BedrockScript) -> bool:
            if scripted.error_code is None:
                return False
            self._write(encode_exception(scripted.error_code, f"scripted {scripted.error_code}"))
            return True

        def _write(self, message: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
            self.wfile.flush()

        def _send_error(self, status: int, code: str, message: str) -> None:
            payload = json.dumps({"message": message}).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/")
            self.send_header("x-amzn-RequestId", "local-bedrock-request")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _guardrail_config_problem(config: dict | None) -> str | None:
    """Bedrock's own validation of `guardrailConfig` (a ValidationException otherwise)."""
    if config is None:
        return None
    if not config.get("guardrailIdentifier") or not config.get("guardrailVersion"):
        return "guardrailConfig needs guardrailIdentifier and guardrailVersion"
    if config.get("streamProcessingMode", "sync") not in ("sync", "async"):
        return "guardrailConfig.streamProcessingMode must be sync or async"
    return None


def _intervention(scripted: BedrockScript, received: ReceivedRequest) -> str | None:
    """"input" or "output" when the local guardrail blocks this request, else None."""
    if received.guardrail_config is None:
        return None
    said = json.dumps(received.messages, ensure_ascii=False).lower()
    if scripted.guardrail == "block_input" or PROMPT_ATTACK in said:
        return "input"
    if scripted.guardrail == "block_output":
        return "output"
    return None


def _guardrail_id(received: ReceivedRequest) -> str:
    assert received.guardrail_config is not None
    return str(received.guardrail_config["guardrailIdentifier"])


def _trace(scripted: BedrockScript, received: ReceivedRequest) -> dict | None:
    """The trace of a guardrail that let the answer through (masking names when scripted)."""
    if received.guardrail_config is None:
        return None
    assessment: dict[str, Any] = {}
    if scripted.guardrail == "anonymize":
        assessment["sensitiveInformationPolicy"] = {
            "piiEntities": [{"match": "Hong Gildong", "type": "NAME", "action": "ANONYMIZED"}]
        }
    return {"guardrail": {"outputAssessments": {_guardrail_id(received): [assessment]}}}


def _blocked_trace(received: ReceivedRequest, where: str) -> dict:
    blocked = {"contentPolicy": {"filters": [
        {"type": "PROMPT_ATTACK" if where == "input" else "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED"}
    ]}}
    guardrail_id = _guardrail_id(received)
    if where == "input":
        return {"guardrail": {"inputAssessment": {guardrail_id: blocked}}}
    return {"guardrail": {"outputAssessments": {guardrail_id: [blocked]}}}


def _system_text(system: list[dict] | None) -> str | None:
    return tokens.content_text(system) if system else None


def iter_text(response: dict) -> Iterator[str]:
    """The text deltas of a boto3 `converse_stream` response (a helper for tests)."""
    for event in response["stream"]:
        if "contentBlockDelta" in event:
            yield event["contentBlockDelta"]["delta"].get("text", "")


@pytest.fixture(scope="session")
def bedrock_server() -> Iterator[BedrockServer]:
    server = BedrockServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bedrock_client(bedrock_server: BedrockServer):
    """A real boto3 `bedrock-runtime` client pointed at the local server: dummy credentials,
    us-east-1, no retries and short timeouts so failures show at once."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=bedrock_server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1}),
    )
