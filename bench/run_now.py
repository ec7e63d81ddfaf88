"""How long an analyst's "Run now" request takes in the embedded default, and how long until the
run's result is in: with the run on a background thread (the default) and inline (eager Celery
inside the request, as before). Each mode runs in a fresh process, so the first run pays for
importing DuckDB like an analyst's first run after start-up does. Not a test: it asserts nothing.

    .venv/bin/python bench/run_now.py [--records 50000] [--days 7]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SLUG = "tokens-cost-by-model"


def measure(*, background: bool, records: int, days: int) -> dict:
    """In this process: a fresh SQLite database and lake, one "Run now", then poll until it ends."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-run-now-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="gateway_project.settings.local",
        DATABASE_URL=f"sqlite:///{scratch / 'db.sqlite3'}",
        GATEWAY_LAKE_DIR=str(scratch / "lake"),
        GATEWAY_SQLITE_PATH=str(scratch / "dataplane.sqlite3"),
        GATEWAY_REPORT_RUNS_IN_BACKGROUND="true" if background else "false",
        DJANGO_LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from accounts.roles import ANALYSTS
    from analytics.lake import lake_write_records, synthetic_records
    from analytics.models import ReportRun
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    first_day = timezone.localdate() - timedelta(days=days - 1)
    subs = [f"bench-{n}" for n in range(50)]
    rows = synthetic_records(first_day=first_day, days=days, user_subs=subs, turns_per_day=records // days, seed=5)
    lake_write_records(Path(os.environ["GATEWAY_LAKE_DIR"]), rows)
    client = Client(HTTP_HOST="127.0.0.1")
    analyst: Any = UserFactory(username="bench-analyst", groups=[ANALYSTS])  # a User, built by factory_boy
    client.force_login(analyst)

    client.get("/reports/")  # the analyst opens the list first: URL, template and session warm-up
    began = time.perf_counter()
    response = client.post(f"/reports/{SLUG}/run/")
    request_s = time.perf_counter() - began
    run = ReportRun.objects.latest("pk")
    status_at_response = run.status
    while not run.is_finished:
        time.sleep(0.25)  # about as often as the run page polls
        run.refresh_from_db()
    began_at = timezone.now() - timedelta(seconds=time.perf_counter() - began)
    assert run.finished_at is not None  # is_finished
    return {
        "mode": "background" if background else "inline",
        "http_status": response.status_code,
        "request_ms": round(request_s * 1000),
        "status_when_page_opens": status_at_response,
        "result_in_ms": round((run.finished_at - began_at).total_seconds() * 1000),
        "final_status": run.status,
        "rows": run.row_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--mode", choices=("background", "inline"))
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(background=args.mode == "background", records=args.records, days=args.days)))
        return
    print(f'"Run now" of {SLUG} over {args.records:,} synthetic records in {args.days} days (embedded default)')
    for mode in ("inline", "background"):
        command = [sys.executable, __file__, "--mode", mode, "--records", str(args.records), "--days", str(args.days)]
        # Our own interpreter and this file, with arguments argparse has already typed.
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(finished.stdout.splitlines()[-1])
        print(
            f"  {result['mode']:<10} request {result['request_ms']:>5} ms · page opens on a "
            f"{result['status_when_page_opens']!r} run · result in {result['result_in_ms']:>5} ms "
            f"({result['final_status']}, {result['rows']} rows)"
        )


if __name__ == "__main__":
    main()
