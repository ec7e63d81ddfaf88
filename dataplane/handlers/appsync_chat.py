"""Lambda: the `inbound` namespace's onPublish handler (AppSync invokes it asynchronously).

A thin Powertools resolver: it takes the publish's payloads and the caller's verified
identity, and hands them to `dataplane.inbound.run_published_events`, which streams each
answer back on the caller's `/outbound/<sub>` through AppSync's HTTP publish.

AppSync discards whatever an EVENT invocation returns, so a failure must not end as a return
value: it reaches the user as an error event, the logs and the lake as a record, CloudWatch as
the `ChatHandlerFailures` metric, and Lambda as an error (its alarm, and the on-failure
destination that keeps the event).
"""
from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from dataplane.channels import caller_sub, outbound_channel
from dataplane.errors import InternalError
from dataplane.gateway import Gateway
from dataplane.inbound import run_published_events
from dataplane.outbound import Outbound
from dataplane.pipeline import Identity
from dataplane.settings_table import default_of
from dataplane.telemetry.record import RequestRecord, utc_now
from dataplane.telemetry.sinks import StdoutSink

# Read here, not through GatewayConfig: a failure to build the config must still be counted.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or default_of("POWERTOOLS_SERVICE_NAME")
METRICS_NAMESPACE = os.environ.get("GATEWAY_METRICS_NAMESPACE") or default_of("GATEWAY_METRICS_NAMESPACE")
FAILURE_METRIC = "ChatHandlerFailures"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
app = AppSyncEventsResolver()
# The data plane logs through the standard library; in Lambda its records carry the
# invocation's context (request id, function) like the handler's own.
copy_config_to_registered_loggers(source_logger=logger, include={"dataplane"})

_gateway: Gateway | None = None
_gateway_lock = threading.Lock()


class InboundPublishError(RuntimeError):
    """Raised after the failure was reported, so Lambda counts it and keeps the event."""


def lambda_gateway() -> Gateway:
    global _gateway  # noqa: PLW0603 - built once, on first use, under the lock
    with _gateway_lock:
        if _gateway is None:
            from dataplane.config import GatewayConfig
            from dataplane.telemetry.powertools import record_metrics_writer

            config = GatewayConfig.from_environ()
            writer = record_metrics_writer(namespace=config.metrics_namespace, service=SERVICE)
            _gateway = Gateway.from_config(config, record_metrics=writer)
        return _gateway


@functools.cache
def _publishing() -> tuple[Any, Any]:
    """One boto3 session (its credentials refresh themselves) and one HTTP connection pool
    per Lambda container, so a warm invocation builds neither again."""
    import boto3
    import urllib3

    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10), retries=urllib3.Retry(2))
    return boto3.session.Session(), pool


def _appsync_outbound(endpoint: str, region: str, sub: str) -> Outbound:
    from dataplane.appsync import AppSyncHttpOutbound

    session, pool = _publishing()
    return AppSyncHttpOutbound(
        endpoint=endpoint,
        channel=outbound_channel(sub),
        region=region,
        credentials=session.get_credentials().get_frozen_credentials(),
        http=pool,
    )


def _gateway_outbound(gateway: Gateway, sub: str) -> Outbound:
    return _appsync_outbound(gateway.config.events_http_endpoint, gateway.config.region, sub)


OutboundFactory = Callable[[Gateway, str], Outbound]
outbound_factory: OutboundFactory = _gateway_outbound


# "/*", not "/inbound/*": a publish Powertools finds no route for is returned as is, i.e.
# silently dropped; every publish this namespace hands over must get an answer.
@app.on_publish("/*", aggregate=True)
def _inbound_publish(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    event = app.current_event
    caller = event.raw_event.get("identity") or {}
    identity = Identity(sub=caller_sub(caller), username=str(caller.get("username") or ""))
    gateway: Gateway | None = None
    outbound: Outbound | None = None
    try:
        gateway = lambda_gateway()
        outbound = outbound_factory(gateway, identity.sub)
        try:
            run_published_events(
                gateway=gateway,
                identity=identity,
                channel=event.info.channel_path,
                payloads=[item.get("payload") for item in payload],
                outbound=outbound,
                entry="appsync",
                remaining_ms=app.lambda_context.get_remaining_time_in_millis,
                watch_store_cancels=True,
            )
        finally:
            _flush(outbound)
    except Exception:
        _report_failure(identity=identity, gateway=gateway, outbound=outbound)
        raise
    # Nobody subscribes to inbound: nothing is broadcast there.
    return []


def _flush(outbound: Outbound | None) -> None:
    flush = getattr(outbound, "flush", None)
    if flush is not None:
        flush()


def _report_failure(*, identity: Identity, gateway: Gateway | None, outbound: Outbound | None) -> None:
    """Make a failure outside the turns visible; each step is best effort, none may hide the
    others (the gateway itself may be what failed to build)."""
    reference = str(uuid.uuid4())
    logger.exception("inbound publish failed", extra={"reference": reference, "sub": identity.sub})
    with single_metric(name=FAILURE_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
    record = RequestRecord(
        request_id=reference, ts=utc_now(), user_sub=identity.sub, entry="appsync",
        outcome="error", error_type=InternalError.type,
    )
    try:
        telemetry = (
            gateway.telemetry
            if gateway is not None
            else StdoutSink(namespace=METRICS_NAMESPACE, record_metrics=lambda r: None)
        )
        telemetry.emit(record)
    except Exception:
        logger.exception("failure record not written", extra={"reference": reference})
    if not identity.sub:
        return
    try:
        if outbound is None:
            # The gateway (its configuration) may be what failed: reach the user with what
            # the environment says directly.
            outbound = _appsync_outbound(
                os.environ.get("GATEWAY_EVENTS_HTTP_ENDPOINT", ""),
                os.environ.get("AWS_REGION", "us-east-1"),
                identity.sub,
            )
        failure = InternalError(f"Something went wrong on our side (reference {reference}).")
        outbound.send({"error": failure.to_wire(request_id=reference), "conversationId": None})
        _flush(outbound)
    except Exception:
        logger.exception("failure not delivered to the user", extra={"reference": reference})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> Any:
    response = app.resolve(event, context)
    if isinstance(response, dict) and "error" in response:
        # Powertools turned an exception into a return value, which AppSync drops in EVENT mode.
        raise InboundPublishError(response["error"])
    return response
