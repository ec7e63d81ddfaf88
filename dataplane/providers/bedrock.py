"""Amazon Bedrock through ConverseStream (boto3).

The model id is passed to Bedrock unchanged: foundation model ids
(`anthropic.claude-3-5-haiku-20241022-v1:0`), cross-region inference profiles (`us.`, `eu.`,
`apac.`, `global.` prefixes) and ARNs of imported, custom or provisioned models all go in the
`modelId` path parameter, which boto3 percent-encodes.

Errors are mapped by Bedrock's error *code*, the same table at call start (`ClientError`, an
HTTP error response) and mid-stream (`EventStreamError`, an exception event, whose codes are
camelCase: `throttlingException`). Codes are compared case-insensitively.

Bedrock code -> gateway error: why.

- ThrottlingException, ServiceQuotaExceededException, TooManyRequestsException -> ModelThrottled:
  the account's model quota is spent for now; retry later.
- ServiceUnavailableException, ModelNotReadyException, ModelTimeoutException,
  modelStreamErrorException -> ModelUnavailable: transient on the model's side; the same request
  may work later.
- ResourceNotFoundException -> ModelUnavailable: the model id/ARN does not exist in this region or
  account: a catalogue problem, not the user's.
- AccessDeniedException, UnrecognizedClientException, ExpiredTokenException, missing credentials
  -> ModelUnavailable: the gateway's role lacks access to the model (message says so).
- connection errors, connect/read timeouts, a stream cut short -> ModelUnavailable: Bedrock could
  not be reached or stopped answering.
- ValidationException, boto3's ParamValidationError -> ValidationError: the request itself is
  wrong (too long, bad parameter).
- InternalServerException, ModelErrorException, anything else -> UpstreamError: Bedrock or the
  model failed; nothing the user can change.

Closing the generator early (a cancelled turn) closes the underlying HTTP response, so the
gateway stops reading and Bedrock stops generating.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError
from urllib3.exceptions import HTTPError as Urllib3Error

from dataplane.aws import ClientSettings
from dataplane.aws import client as aws_client
from dataplane.errors import GatewayError, ModelThrottled, ModelUnavailable, UpstreamError, ValidationError
from dataplane.permissions import Resource, need
from dataplane.providers.base import (
    GuardrailConfig,
    GuardrailVerdict,
    ModelCall,
    ProviderEvent,
    ProviderStream,
    StreamEnd,
    TextDelta,
    ToolUseInput,
    ToolUseStart,
)
from dataplane.settings_table import default_of

# ConverseStream is authorised as bedrock:InvokeModelWithResponseStream, on the model or
# inference profile named by `modelId` (and, for a profile, on the model it routes to).
BEDROCK_NEEDS = (
    need(Resource.MODELS, "bedrock:InvokeModelWithResponseStream", why="stream one answer (ConverseStream)"),
    # A Converse call with `guardrailConfig` is also authorised as ApplyGuardrail on the
    # guardrail; ApplyGuardrail itself checks text for models that are not on Bedrock.
    need(
        Resource.GUARDRAILS,
        "bedrock:ApplyGuardrail",
        why="apply the policy's guardrail (guardrailConfig, ApplyGuardrail)",
    ),
)
GUARDRAIL_INTERVENED = "guardrail_intervened"

_THROTTLED = {"throttlingexception", "servicequotaexceededexception", "toomanyrequestsexception"}
_UNAVAILABLE = {
    "serviceunavailableexception",
    "modelnotreadyexception",
    "modeltimeoutexception",
    "modelstreamerrorexception",
    "resourcenotfoundexception",
}
_ACCESS_DENIED = {"accessdeniedexception", "unrecognizedclientexception", "expiredtokenexception"}
_INVALID = {"validationexception"}
# Everything a Bedrock call can fail with below the gateway's own errors.
_TRANSPORT_ERRORS = (ClientError, BotoCoreError, Urllib3Error, OSError)


def bedrock_client_settings(
    *,
    region: str = default_of("AWS_REGION"),
    endpoint_url: str | None = None,
    connect_timeout: float = default_of("GATEWAY_BEDROCK_CONNECT_TIMEOUT"),
    read_timeout: float = default_of("GATEWAY_BEDROCK_READ_TIMEOUT"),
    max_attempts: int = default_of("GATEWAY_BEDROCK_MAX_ATTEMPTS"),
) -> ClientSettings:
    """How the Bedrock runtime client talks to AWS: the read timeout is the longest pause
    between two chunks of an answer, so it is far longer than other clients' (the table's
    GATEWAY_BEDROCK_* defaults)."""
    return ClientSettings(
        region=region,
        endpoint_url=endpoint_url or None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
    )


class BedrockProvider:
    """Streams answers from Bedrock's ConverseStream API.

    The boto3 client is created on first use by `dataplane.aws.client`, which shares one per
    client settings in the process (boto3 clients are thread-safe); pass `client` to inject one
    (tests), or `client_settings` to change the region, endpoint, timeouts and retries.
    """

    name = "Amazon Bedrock"
    takes_tools = True  # Converse's toolConfig; a model without tool use answers ValidationException

    def __init__(
        self,
        *,
        client_settings: ClientSettings | None = None,
        client: Any = None,
    ) -> None:
        self.client_settings = client_settings or bedrock_client_settings()
        self._client = client

    @property
    def region(self) -> str:
        return self.client_settings.region

    @property
    def endpoint_url(self) -> str | None:
        return self.client_settings.endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("bedrock-runtime", self.client_settings)
        return self._client

    def stream(self, call: ModelCall) -> ProviderStream:
        try:
            response = self.client.converse_stream(**converse_request(call))
        except _TRANSPORT_ERRORS as error:
            raise gateway_error(call.model_id, error) from error
        event_stream = response["stream"]
        try:
            yield from _read_events(event_stream)
        except _TRANSPORT_ERRORS as error:
            raise gateway_error(call.model_id, error) from error
        finally:
            # Also on GeneratorExit: a cancelled turn must stop reading and free the connection.
            event_stream.close()


    def apply_guardrail(self, guardrail: GuardrailConfig, *, source: str, text: str) -> GuardrailVerdict:
        """Check one text (`source` INPUT: a prompt, OUTPUT: an answer) with ApplyGuardrail."""
        try:
            response = self.client.apply_guardrail(
                guardrailIdentifier=guardrail.identifier,
                guardrailVersion=guardrail.version,
                source=source,
                content=[{"text": {"text": text}}],
            )
        except _TRANSPORT_ERRORS as error:
            raise gateway_error(f"guardrail {guardrail.identifier}", error) from error
        assessments = [a for a in response.get("assessments", []) if isinstance(a, dict)]
        outputs = [o.get("text", "") for o in response.get("outputs", []) if isinstance(o, dict)]
        return GuardrailVerdict(
            blocked=any(_blocked(assessment) for assessment in assessments),
            found_pii=any(_found_pii(assessment) for assessment in assessments),
            text="".join(outputs) if response.get("action") == "GUARDRAIL_INTERVENED" and outputs else text,
        )


def converse_request(call: ModelCall) -> dict[str, Any]:
    """The `converse_stream` keyword arguments for one model call."""
    request: dict[str, Any] = {
        "modelId": call.model_id,
        "messages": [_converse_message(m) for m in call.messages],
        "inferenceConfig": call.inference_config(),
    }
    if call.system:
        request["system"] = [{"text": call.system}]
    if call.tool_config is not None:
        request["toolConfig"] = call.tool_config
    if call.guardrail is not None:
        request["guardrailConfig"] = {
            "guardrailIdentifier": call.guardrail.identifier,
            "guardrailVersion": call.guardrail.version,
            "streamProcessingMode": call.guardrail.stream_mode,
            # The trace says *what* the guardrail found (PII masked, a filter tripped), which
            # decides whether the answer may be cached; it never reaches the user or the log.
            "trace": "enabled",
        }
    return request


def _converse_message(message: dict) -> dict:
    # Tolerate `content` as a plain string; Converse wants a list of blocks.
    content = message.get("content")
    if isinstance(content, str):
        return {"role": message["role"], "content": [{"text": content}]}
    return message


def _read_events(event_stream: Any) -> Iterator[ProviderEvent]:
    stop_reason: str | None = None
    end = StreamEnd()
    tool_calls: dict[int, int] = {}  # Converse's content block index -> the answer's n-th tool call
    for event in event_stream:
        if "contentBlockDelta" in event:
            block = event["contentBlockDelta"]
            delta = block.get("delta", {})
            text = delta.get("text")
            if text:
                yield TextDelta(text)
            tool_input = (delta.get("toolUse") or {}).get("input")
            if tool_input and block.get("contentBlockIndex") in tool_calls:
                yield ToolUseInput(call=tool_calls[block["contentBlockIndex"]], text=tool_input)
        elif "contentBlockStart" in event:
            block = event["contentBlockStart"]
            tool_use = (block.get("start") or {}).get("toolUse")
            if tool_use:
                tool_calls[block.get("contentBlockIndex", len(tool_calls))] = call = len(tool_calls)
                yield ToolUseStart(call=call, tool_use_id=tool_use["toolUseId"], name=tool_use["name"])
        elif "messageStop" in event:
            stop_reason = event["messageStop"].get("stopReason") or "end_turn"
        elif "metadata" in event:
            end = _stream_end_from_metadata(event["metadata"])
    if stop_reason is None:
        raise ModelUnavailable("The model's answer was cut off: Bedrock ended the stream before the message finished.")
    yield StreamEnd(
        stop_reason=stop_reason,
        input_tokens=end.input_tokens,
        output_tokens=end.output_tokens,
        latency_ms=end.latency_ms,
        extra=end.extra,
        guardrail_intervened=stop_reason == GUARDRAIL_INTERVENED or end.guardrail_intervened,
        guardrail_found_pii=end.guardrail_found_pii,
    )


def _stream_end_from_metadata(metadata: dict) -> StreamEnd:
    usage = metadata.get("usage") or {}
    metrics = metadata.get("metrics") or {}
    extra = {
        key: usage[key] for key in ("cacheReadInputTokens", "cacheWriteInputTokens") if usage.get(key) is not None
    }
    assessments = _guardrail_assessments(metadata.get("trace") or {})
    return StreamEnd(
        input_tokens=usage.get("inputTokens"),
        output_tokens=usage.get("outputTokens"),
        latency_ms=metrics.get("latencyMs"),
        extra=extra,
        guardrail_intervened=any(_blocked(assessment) for assessment in assessments),
        guardrail_found_pii=any(_found_pii(assessment) for assessment in assessments),
    )


def _found_pii(assessment: dict) -> bool:
    sensitive = assessment.get("sensitiveInformationPolicy") or {}
    return bool(sensitive.get("piiEntities") or sensitive.get("regexes"))


def _guardrail_assessments(trace: dict) -> list[dict]:
    """Every assessment in a guardrail trace: the input's, and each output's."""
    guardrail = trace.get("guardrail") or {}
    assessments = list((guardrail.get("inputAssessment") or {}).values())
    for per_output in guardrail.get("outputAssessments", {}).values():
        assessments.extend(per_output)
    return [a for a in assessments if isinstance(a, dict)]


def _blocked(assessment: dict) -> bool:
    """Did any policy in this assessment block (not just mask)?"""
    for policy in assessment.values():
        if not isinstance(policy, dict):
            continue
        for findings in policy.values():
            if isinstance(findings, list) and any(
                isinstance(f, dict) and f.get("action") == "BLOCKED" for f in findings
            ):
                return True
    return False


def gateway_error(model_id: str, error: Exception) -> GatewayError:
    """The gateway error for a boto3/botocore/urllib3 failure talking to Bedrock."""
    if isinstance(error, ClientError):  # EventStreamError (mid-stream) is a ClientError too
        details = error.response.get("Error", {})
        return error_for_code(model_id, str(details.get("Code", "")), str(details.get("Message", "")))
    if isinstance(error, ParamValidationError):  # boto3 refused the request before sending it
        return ValidationError(f"The request to {model_id} is invalid: {error}", modelId=model_id)
    if isinstance(error, NoCredentialsError):
        return ModelUnavailable(
            f"Model {model_id} is unavailable: the gateway has no AWS credentials for Bedrock.",
            modelId=model_id,
        )
    # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, a stream cut short
    return ModelUnavailable(
        f"Model {model_id} is unavailable: Bedrock could not be reached or stopped answering "
        f"({type(error).__name__}).",
        modelId=model_id,
    )


def error_for_code(model_id: str, code: str, upstream_message: str = "") -> GatewayError:
    """The gateway error for one Bedrock error code (see the table in the module docstring)."""
    normalised = code.lower()
    if normalised in _THROTTLED:
        return ModelThrottled(
            f"Model {model_id} is busy (Bedrock is throttling requests); try again shortly.",
            modelId=model_id, code=code,
        )
    if normalised in _ACCESS_DENIED:
        return ModelUnavailable(
            f"Model {model_id} is unavailable: the gateway's AWS role lacks access to it "
            "(enable model access in Bedrock, or grant bedrock:InvokeModelWithResponseStream).",
            modelId=model_id, code=code,
        )
    if normalised in _UNAVAILABLE:
        return ModelUnavailable(
            f"Model {model_id} is unavailable right now ({code}); try again later.", modelId=model_id, code=code
        )
    if normalised in _INVALID:
        # Bedrock's own words help here ("input is too long", "maxTokens exceeds ..."); the
        # mapping itself never looks at them.
        reason = f": {upstream_message}" if upstream_message else "."
        return ValidationError(f"Bedrock rejected the request to {model_id}{reason}", modelId=model_id, code=code)
    return UpstreamError(f"Bedrock failed to answer with {model_id} ({code or 'unknown error'}).",
                         modelId=model_id, code=code)
