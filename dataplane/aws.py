"""boto3 clients for the data plane: created lazily, cached, with explicit timeouts and retries.

Nothing here runs at import time, so importing the data plane never needs AWS credentials or a
network. Every client gets an explicit botocore `Config`: the defaults (60 s timeouts, legacy
retries) would let one slow dependency hold a chat turn for minutes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dataplane.errors import StoreUnavailableError


@dataclass(frozen=True)
class ClientSettings:
    """How one client talks to AWS; hashable, so equal settings share one cached client."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_attempts: int = 3  # calls in all, the first included (botocore's `total_max_attempts`)
    retry_mode: str = "standard"  # jittered backoff; "adaptive" also rate-limits the client
    max_pool_connections: int = 32  # Django serves many threads with one client
    user_agent_extra: str | None = None  # names the caller in CloudTrail (e.g. the reports)
    # Explicit credentials are for local servers in tests and dev; in AWS the default chain
    # (Lambda role, instance profile, environment) applies.
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # botocore's `max_attempts` counts retries after the first call; `total_max_attempts`
            # counts calls, which is what `max_attempts` means here.
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            max_pool_connections=self.max_pool_connections,
            user_agent_extra=self.user_agent_extra,
        )


# boto3 sessions are not thread-safe to create clients from; one session behind a lock also
# shares the loaded service models, so a new client costs milliseconds, not a JSON parse.
_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def new_client(service: str, settings: ClientSettings) -> Any:
    """A fresh (uncached) low-level client; tests use it to hook events on a private client."""
    global _session  # noqa: PLW0603 - built once, on first use, under the lock
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            service,
            region_name=settings.region,
            endpoint_url=settings.endpoint_url or None,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            aws_session_token=settings.aws_session_token,
            config=settings.botocore_config(),
        )


_DEFAULT_SETTINGS = ClientSettings()


@lru_cache(maxsize=16)
def client(service: str, settings: ClientSettings = _DEFAULT_SETTINGS) -> Any:
    """The process-wide client for `service` with these settings (low-level clients are thread-safe)."""
    return new_client(service, settings)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def store_unavailable(error: Exception, *, service: str, operation: str, resource: str = "") -> StoreUnavailableError:
    """A botocore failure as the project's own error, with a message a person can act on."""
    where = f"{service} {operation}" + (f" on {resource}" if resource else "")
    if isinstance(error, ClientError):
        code = error_code(error)
        detail = error.response.get("Error", {}).get("Message", "") or str(error)
        return StoreUnavailableError(f"{where} failed: {code}: {detail}")
    if isinstance(error, BotoCoreError):
        return StoreUnavailableError(f"{where} failed: {type(error).__name__}: {error}")
    return StoreUnavailableError(f"{where} failed: {type(error).__name__}: {error}")
