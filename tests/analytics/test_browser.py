"""A real headless Chromium on the analysts' run page: the chart is drawn, progress is polled."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from analytics.models import ReportDefinition, ReportRun, RunStatus
from analytics.services import report_run_execute, report_run_request
from tests.analytics.conftest import FIRST_DAY, LAST_DAY
from tests.browser import ARTIFACTS, chromium
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_page():
    """Start Chromium only once the test's data is stored: Playwright's sync API runs an event
    loop on this thread, after which Django refuses ORM calls here."""

    @contextmanager
    def page_in_chromium() -> Iterator:
        with chromium() as browser:
            yield browser.new_page(viewport={"width": 1200, "height": 1100})

    return page_in_chromium


def execute_and_disconnect(run_id: int) -> None:
    """What a worker does, on its own thread, closing its DB connection so teardown can drop the DB."""
    from django.db import connections

    try:
        report_run_execute(run_id=run_id)
    finally:
        connections.close_all()


def sign_in(page, base_url: str, next_path: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=login]", "ana")
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def test_an_analyst_sees_the_run_chart(live_server, lake_records, password, open_page):
    from accounts.roles import ANALYSTS

    UserFactory(username="ana", is_staff=True, groups=[ANALYSTS])
    definition = ReportDefinition.objects.get(slug="tokens-cost-by-model")
    # Not in an atomic block (transactional test): on_commit runs at once, the eager task with it.
    run = report_run_request(
        definition=definition,
        params={"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat()},
        requested_by=None,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    with open_page() as page:
        sign_in(page, live_server.url, f"/reports/runs/{run.pk}/", password)
        page.wait_for_selector("#chart svg.report-chart polyline.series")
        series = page.eval_on_selector_all("#chart svg polyline.series", "lines => lines.map(l => l.dataset.series)")
        points = page.eval_on_selector_all("#chart svg polyline.series", "lines => lines.map(l => l.points.length)")
        table_rows = page.locator("table.results tbody tr").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-run.png"), full_page=True)
        page.goto(f"{live_server.url}/reports/")
        latest_link = page.locator(f"a[href='/reports/runs/{run.pk}/']").count()
        page.screenshot(path=str(ARTIFACTS / "analytics-reports.png"), full_page=True)
        page.goto(f"{live_server.url}/reports/tokens-cost-by-model/")
        history = page.locator("table.data tbody tr").count()
        page.screenshot(path=str(ARTIFACTS / "analytics-report-detail.png"), full_page=True)

    assert (latest_link, history) == (1, 1)
    assert sorted(series) == sorted({row[1] for row in run.rows})  # one line per model
    assert points == [5] * len(series)  # one point per day
    assert table_rows == run.row_count


def test_a_queued_run_page_polls_until_the_run_ends(live_server, lake_records, password, open_page):
    from accounts.roles import ANALYSTS

    UserFactory(username="ana", is_staff=True, groups=[ANALYSTS])
    run = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="errors-by-type"),
        params={"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat(), "model_id": None, "group": None},
    )
    with open_page() as page:
        sign_in(page, live_server.url, f"/reports/runs/{run.pk}/", password)
        progress_shown = page.locator("#run-progress").count()
        # The "worker" finishes the run while the page is open (ORM off the browser's thread).
        worker = threading.Thread(target=execute_and_disconnect, args=(run.pk,))
        worker.start()
        worker.join(timeout=60)
        page.wait_for_selector("#chart svg.report-chart rect.bar", timeout=20_000)
        progress_left = page.locator("#run-progress").count()
        status = page.locator("#run-status").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-run-bars.png"), full_page=True)

    assert (progress_shown, progress_left, status) == (1, 0, "Succeeded")


def test_a_day_without_turns_is_a_gap_in_the_line(live_server, lake_dir, password, open_page):
    from accounts.roles import ANALYSTS
    from analytics.lake import lake_write_records, synthetic_records
    from tests.analytics import expected

    UserFactory(username="ana", is_staff=True, groups=[ANALYSTS])
    records = synthetic_records(first_day=FIRST_DAY, days=5, user_subs=["sub-gap"], models=["demo.echo-v1"], seed=3)
    missing = FIRST_DAY.replace(day=FIRST_DAY.day + 2)
    lake_write_records(lake_dir, [r for r in records if expected.record_day(r, "UTC") != missing])
    run = report_run_request(
        definition=ReportDefinition.objects.get(slug="tokens-cost-by-model"),
        params={"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat()},
        requested_by=None,
    )
    with open_page() as page:
        sign_in(page, live_server.url, f"/reports/runs/{run.pk}/", password)
        page.wait_for_selector("#chart svg.report-chart polyline.series")
        points = page.eval_on_selector_all("#chart svg polyline.series", "lines => lines.map(l => l.points.length)")
    # Two days, the missing one, two days: two separate lines, not one bridging the gap.
    assert points == [2, 2]
