"""Publish who is who (`users`) and who is in which group (`group_members`) for report SQL.

Reports join these tables instead of carrying a group's member ids inline, so a group of any
size costs the same query text. They are published before every report run, so a run always
sees the membership of the moment it ran: a local CSV the DuckDB engine reads as a table, or on
AWS an S3 object under the lake prefix that a Glue table (deploy/, `AnalyticsLake`) describes.
Each file is replaced whole (temp name + rename locally; one PutObject on S3), never half
written.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from dataplane.telemetry.schema import DIRECTORY_TABLES, directory_object_key

# The one S3 call below (`put_object`) is declared in `analytics.permissions.DIRECTORY_PUBLISH_NEEDS`.


class DirectoryPublishError(Exception):
    """The membership tables could not be published; the message says where and why."""


def directory_rows() -> dict[str, list[tuple[str, ...]]]:
    """The rows of each directory table, sorted so identical membership gives identical files."""
    users = get_user_model().objects.exclude(sub="")
    return {
        "users": sorted(users.values_list("sub", "username")),
        "group_members": sorted(users.filter(groups__isnull=False).values_list("sub", "groups__name")),
    }


def directory_csv(table: str, rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(DIRECTORY_TABLES[table])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def directory_publish() -> None:
    """Write both tables where the configured report engine reads them."""
    files = {table: directory_csv(table, rows) for table, rows in directory_rows().items()}
    if settings.ANALYTICS_ENGINE == "athena":
        _publish_s3(files)
    else:
        _publish_local(Path(settings.GATEWAY_LAKE_DIR), files)


def _publish_local(lake_dir: Path, files: dict[str, bytes]) -> None:
    for table, body in files.items():
        path = lake_dir / directory_object_key(table)
        temp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(body)
            os.replace(temp, path)
        except OSError as error:
            raise DirectoryPublishError(f"Could not write the {table} table to {path}: {error}") from error


def _s3_client(region: str) -> Any:
    from dataplane.aws import ClientSettings, client

    return client("s3", ClientSettings(region=region, connect_timeout=5, read_timeout=30, max_attempts=6))


def _publish_s3(files: dict[str, bytes]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = settings.GATEWAY_LAKE_BUCKET, settings.GATEWAY_LAKE_PREFIX
    if not bucket:
        raise DirectoryPublishError("GATEWAY_LAKE_BUCKET is not set: reports on Athena join tables published there.")
    client = _s3_client(settings.AWS_REGION)
    for table, body in files.items():
        key = f"{prefix}{directory_object_key(table)}"
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
        except (ClientError, BotoCoreError) as error:
            raise DirectoryPublishError(
                f"Could not publish the {table} table to s3://{bucket}/{key}: {error}"
            ) from error
