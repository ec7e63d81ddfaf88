"""Where a queued report run executes when Celery runs tasks eagerly (the embedded default).

With a real broker `report_run_task.delay` returns at once and a worker runs the report. With
eager Celery, `.delay` would run the whole query inside the analyst's "Run now" request (about
2.5 s on the demo lake, minutes on a big one) with no feedback. Here the eager task runs on a
small thread pool instead, so the request returns at once and the run page polls the run's
status (queued → running → succeeded/failed) like it does with a worker.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

# Two runs at once at most: the embedded default is one process on a small machine, and a
# third run waits "queued", which the page shows.
MAX_BACKGROUND_RUNS = 2


def runs_in_background() -> bool:
    """Read at call time, so tests can switch it with `override_settings`."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER and settings.GATEWAY_REPORT_RUNS_IN_BACKGROUND)


def report_run_submit(*, run_id: int) -> Future:
    """Execute the eager task for `run_id` on the pool; return its future (tests wait on it)."""
    return _pool().submit(_execute, run_id)


@cache  # one pool per process, made on first use (cache is thread-safe for this)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=MAX_BACKGROUND_RUNS, thread_name_prefix="report-run")


def _execute(run_id: int) -> str:
    from analytics.tasks import report_run_task

    try:
        return report_run_task.apply(args=(run_id,)).get(propagate=False)
    except Exception:  # the task records its own failures; this is only a last resort log
        logger.exception("background report run %s failed", run_id)
        return "failed"
    finally:
        # Each pool thread holds its own connection: hand it back rather than keep it idle.
        connections.close_all()
