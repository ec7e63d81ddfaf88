"""CloudWatch Embedded Metric Format: the record's figures as metrics, dimension ModelId.

A stdout line in this shape becomes metrics in CloudWatch with no API call; the CDK dashboard
and alarms read these names from the same namespace. The Lambda writes them with Powertools
(`dataplane.telemetry.powertools`); this encoder serves the doors that run without it.
"""
from __future__ import annotations

from typing import Any

from dataplane.telemetry.record import RequestRecord

# The CloudWatch namespace of every gateway metric (GATEWAY_METRICS_NAMESPACE's default; the
# stack's dashboard and alarms read it) and the service name the Lambda functions log under.
METRICS_NAMESPACE = "AIGateway"
SERVICE_NAME = "ai-gateway"

METRIC_UNITS = {
    "InputTokens": "Count",
    "OutputTokens": "Count",
    "TotalTokens": "Count",
    "TimeToFirstTokenMs": "Milliseconds",
    "LatencyMs": "Milliseconds",
    "Refusals": "Count",
    "CacheHits": "Count",
    "Errors": "Count",
    "ModelThrottled": "Count",
    "GuardrailInterventions": "Count",
}


def metric_values(record: RequestRecord) -> dict[str, float]:
    """The record's figures by metric name (units in `METRIC_UNITS`): one definition for this
    encoder and for the Lambda's Powertools metrics."""
    values: dict[str, float] = {
        "InputTokens": record.input_tokens,
        "OutputTokens": record.output_tokens,
        "TotalTokens": record.total_tokens,
        "Refusals": 1 if record.outcome == "refused" else 0,
        "CacheHits": 1 if record.cache in ("hit", "prepared") else 0,
        "Errors": 1 if record.outcome == "error" else 0,
        "ModelThrottled": 1 if record.error_type == "ModelThrottled" else 0,
        "GuardrailInterventions": 1 if record.guardrail_action == "intervened" else 0,
    }
    if record.ttft_ms is not None:
        values["TimeToFirstTokenMs"] = record.ttft_ms
    if record.latency_ms is not None:
        values["LatencyMs"] = record.latency_ms
    return values


def emf_document(record: RequestRecord, *, namespace: str) -> dict[str, Any]:
    values = metric_values(record)
    return {
        "_aws": {
            "Timestamp": int(record.ts.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["ModelId"]],
                    "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in values],
                }
            ],
        },
        "ModelId": record.model_id or "none",
        "requestId": record.request_id,
        **values,
    }
