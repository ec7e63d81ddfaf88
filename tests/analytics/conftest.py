"""Fixtures of the analytics tests: a lake of synthetic records with figures known in advance."""
from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import pytest

from analytics.lake import DEMO_MODELS, lake_write_records, synthetic_records

FIRST_DAY = date(2026, 11, 20)
DAYS = 5
LAST_DAY = date(2026, 11, 24)
REGION = "us-east-1"
USER_SUBS = ("sub-ann-0001", "sub-ben-0002", "sub-cat-0003", "sub-dev-0004")


@pytest.fixture
def lake_dir(settings, tmp_path: Path) -> Path:
    """An empty lake for this test only, read by the DuckDB engine."""
    lake = tmp_path / "lake"
    settings.GATEWAY_LAKE_DIR = str(lake)
    settings.ANALYTICS_ENGINE = "duckdb"
    return lake


@pytest.fixture
def lake_records(lake_dir: Path) -> list[dict]:
    records = synthetic_records(
        first_day=FIRST_DAY, days=DAYS, user_subs=USER_SUBS, models=DEMO_MODELS, turns_per_day=60, seed=11
    )
    lake_write_records(lake_dir, records)
    return records


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_api(endpoint: str, path: str, body: dict) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


@pytest.fixture
def athena(moto_endpoint, monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client(
        "athena",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with contextlib.suppress(client.exceptions.InvalidRequestException):  # made by an earlier test
        client.create_work_group(Name="reports-wg", Configuration={})
    yield client
    moto_api(moto_endpoint, "state-manager/unset-transition", {"model_name": "athena::execution"})
