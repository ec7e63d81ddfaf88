"""Publishing to AppSync Events over HTTP: `POST https://<http domain>/event`, SigV4 signed.

AppSync accepts at most 5 events per publish; this outbound batches small chunks up to that,
keeps their order, and flushes as soon as an event that ends a phase (stop, metadata, error)
arrives or a short linger has passed, so the first token is never held back long.
"""
from __future__ import annotations

import json
import time
from http import HTTPStatus
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dataplane.channels import MAX_EVENTS_PER_PUBLISH
from dataplane.permissions import Resource, need

# A SigV4 HTTP publish is authorised as appsync:EventPublish on the channel namespace.
APPSYNC_PUBLISH_NEEDS = (
    need(Resource.OUTBOUND_NAMESPACE, "appsync:EventPublish", why="stream answers to /outbound/<sub>"),
)
LINGER_SECONDS = 0.05


class AppSyncPublishError(RuntimeError):
    pass


class AppSyncHttpOutbound:
    def __init__(
        self,
        *,
        endpoint: str,
        channel: str,
        region: str,
        credentials: Credentials,
        http: urllib3.PoolManager | None = None,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.region = region
        self.credentials = credentials
        self.http = http or urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10), retries=urllib3.Retry(2))
        self.linger_seconds = linger_seconds
        self._buffer: list[str] = []
        self._buffer_since = 0.0

    def send(self, event: dict[str, Any]) -> None:
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(json.dumps(event, ensure_ascii=False))
        ends_phase = "contentBlockDelta" not in event and "messageStart" not in event
        lingered = time.monotonic() - self._buffer_since >= self.linger_seconds
        if len(self._buffer) >= MAX_EVENTS_PER_PUBLISH or ends_phase or lingered:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:MAX_EVENTS_PER_PUBLISH], self._buffer[MAX_EVENTS_PER_PUBLISH:]
            self._publish(batch)

    def _publish(self, events: list[str]) -> None:
        body = json.dumps({"channel": self.channel, "events": events}).encode("utf-8")
        request = AWSRequest(method="POST", url=self.endpoint, data=body, headers={"content-type": "application/json"})
        SigV4Auth(self.credentials, "appsync", self.region).add_auth(request)
        response = self.http.request("POST", self.endpoint, body=body, headers=dict(request.headers.items()))
        if response.status >= HTTPStatus.MULTIPLE_CHOICES:  # anything but 2xx
            raise AppSyncPublishError(f"AppSync publish failed with HTTP {response.status}: {response.data[:200]!r}")
        result = json.loads(response.data or b"{}")
        if result.get("failed"):
            raise AppSyncPublishError(f"AppSync refused {len(result['failed'])} event(s): {result['failed'][:1]}")
