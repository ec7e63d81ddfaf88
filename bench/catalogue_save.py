"""What one admin save of a catalogue model costs the admin's request, with N users.

A model's name is in every user's document, so a rename republishes everyone. The request
only enqueues `quotas.catalogue_republish` after commit; the worker does the per-user work.
Runs on a scratch SQLite database with Celery not eager (a memory broker: the task is queued,
not run), so the figure is the request alone, as in production. Not a test: it asserts nothing.

    .venv/bin/python bench/catalogue_save.py [--users 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    users = parser.parse_args().users
    scratch = tempfile.mkdtemp(prefix="catalogue-save-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="gateway_project.settings.test",
        DATABASE_URL=f"sqlite:///{scratch}/db.sqlite3",
        GATEWAY_SQLITE_PATH=f"{scratch}/dataplane.sqlite3",
        GATEWAY_LAKE_DIR=f"{scratch}/lake",
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_BROKER_URL="memory://localhost/",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from quotas.models import ModelCatalogueEntry, PolicyOutbox, QuotaPolicy

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    QuotaPolicy.objects.create(name="Standard", is_default=True, ten_minute_total=20_000, monthly_total=10**6)
    entry = ModelCatalogueEntry.objects.create(
        provider="demo", model_id="demo.echo-v1", display_name="Demo", available_to_all=True
    )
    admin = user_model.objects.create_superuser("root", "root@localhost", "bench-Pass-phrase-42")
    user_model.objects.bulk_create([user_model(username=f"user{n}", sub=f"sub-{n}") for n in range(users)])
    client = Client()
    client.force_login(admin)
    url = f"/admin/quotas/modelcatalogueentry/{entry.pk}/change/"
    client.get(url)  # templates and the admin's caches warm, as for a person on the page
    form = {
        "provider": "demo", "model_id": "demo.echo-v1", "display_name": "Echo", "visibility": "public",
        "endpoint_url": "", "enabled": "on", "available_to_all": "on", "default_max_tokens": "1024",
        "price_in_per_1k": "0", "price_out_per_1k": "0",
        "group_access-TOTAL_FORMS": "0", "group_access-INITIAL_FORMS": "0",
    }
    rows = PolicyOutbox.objects.count()
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.post(url, form)
        elapsed = time.perf_counter() - start
    print(
        f"users={users} status={response.status_code} request={elapsed * 1000:.0f} ms "
        f"queries={len(queries)} outbox rows written in the request={PolicyOutbox.objects.count() - rows}"
    )


if __name__ == "__main__":
    main()
