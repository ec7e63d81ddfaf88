"""The Lambda's metrics, written by Powertools: the same names, units and `ModelId`
dimension as `emf.py`, so the dashboard and alarms read both alike. Imported in Lambda only
(Powertools comes from its layer; Django never needs it)."""
from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics

from dataplane.telemetry.emf import METRIC_UNITS, metric_values
from dataplane.telemetry.record import RequestRecord


def record_metrics_writer(*, namespace: str, service: str):
    def write(record: RequestRecord) -> None:
        # One EMF document per record: records of one invocation may carry different models,
        # and a shared `Metrics` object holds one dimension set.
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.add_dimension(name="ModelId", value=record.model_id or "none")
        for name, value in metric_values(record).items():
            metrics.add_metric(name=name, unit=METRIC_UNITS[name], value=value)
        metrics.add_metadata(key="requestId", value=record.request_id)
        metrics.flush_metrics()

    return write
