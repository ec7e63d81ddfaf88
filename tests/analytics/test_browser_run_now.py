""" "Run now" in a real browser: the click returns at once with the run queued, the page polls
its status (queued → running → succeeded) and then shows the result; also in Korean.

The run executes on the embedded default's background pool (eager Celery). To see the queued
state for certain, a second connection holds a row lock on the report definition (the run's
`FOR UPDATE` on the run-with-definition join waits for it), so the run cannot start until the
test lets it go: no timing, no sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from analytics.models import ReportDefinition, ReportRun, RunStatus
from tests.analytics.conftest import FIRST_DAY, LAST_DAY
from tests.browser import ARTIFACTS, chromium
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SLUG = "tokens-cost-by-model"
TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def runs_in_background(settings, lake_records):
    settings.GATEWAY_REPORT_RUNS_IN_BACKGROUND = True
    definition = ReportDefinition.objects.get(slug=SLUG)
    # "Run now" on the list runs the default period: point it at the synthetic lake's days.
    definition.default_params = {"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat()}
    definition.save()
    return definition


@contextmanager
def definition_locked(slug: str) -> Iterator[threading.Event]:
    """Hold the definition's row lock on another connection until the yielded event is set."""
    if connection.vendor != "postgresql":
        pytest.skip("the queued state is held with PostgreSQL row locks (CI runs PostgreSQL)")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        from django.db import connections, transaction

        try:
            with transaction.atomic():
                # NO KEY UPDATE: inserting the run (its foreign key takes KEY SHARE) goes through;
                # the run's own FOR UPDATE on the run-with-definition join waits.
                ReportDefinition.objects.select_for_update(no_key=True).get(slug=slug)
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        yield release
    finally:
        release.set()
        holder.join(timeout=10)


def sign_in(page, base_url: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/reports/")
    page.fill("input[name=login]", "ana")
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base_url}/reports/")


def watch_statuses(page) -> list[str]:
    """Every status the page's poller read from the status endpoint, in order."""
    seen: list[str] = []

    def pass_through(route) -> None:
        # Read the body on its way to the page: after the page reloads it is gone.
        response = route.fetch()
        seen.append(response.json()["status"])
        route.fulfill(response=response)

    page.route("**/status.json", pass_through)
    return seen


def click_run_now(page) -> None:
    row = page.locator("table.reports tr", has=page.locator(f"a[href='/reports/{SLUG}/']"))
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/reports/runs/*/")


def test_run_now_returns_at_once_and_the_page_follows_the_run(live_server, password):
    from accounts.roles import ANALYSTS

    UserFactory(username="ana", is_staff=True, groups=[ANALYSTS])
    with definition_locked(SLUG) as release, chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, live_server.url, password)
        statuses = watch_statuses(page)
        click_run_now(page)
        # The request came back while the run could not even start: it is queued, and shown so.
        first_state = (page.get_attribute("#run-state", "data-finished"), page.inner_text("#run-status"))
        progress_shown = page.locator("#run-progress").count()
        page.wait_for_function("document.querySelector('#run-state').dataset.status === 'queued'")
        phase_queued = page.inner_text("#run-phase")
        release.set()
        page.wait_for_selector("#chart svg.report-chart polyline.series")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-run-now.png"), full_page=True)
        final = (page.inner_text("#run-status"), page.locator("#run-progress").count(), page.inner_text("#run-phase"))

    run = ReportRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert first_state == ("false", "Queued")
    assert progress_shown == 1
    assert phase_queued == "Waiting to start…"
    assert statuses[0] == "queued"
    assert statuses[-1] == "succeeded"
    assert final == ("Succeeded", 0, f"Done: {run.row_count} rows.")


def test_a_korean_analyst_session_on_the_reports_pages(live_server, password, runs_in_background):
    from accounts.roles import ANALYSTS

    UserFactory(username="ana", is_staff=True, groups=[ANALYSTS], language="ko")
    with definition_locked(SLUG) as release, chromium() as browser:
        page = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 1000}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, live_server.url, password)
        # The saved choice wins over the English browser.
        list_page = {
            "lang": page.get_attribute("html", "lang"),
            "heading": page.inner_text("h1"),
            "title": page.inner_text(f"a[href='/reports/{SLUG}/']"),
            "button": page.locator("table.reports button").first.inner_text(),
        }
        statuses = watch_statuses(page)
        click_run_now(page)
        page.wait_for_function("document.querySelector('#run-state').dataset.status === 'queued'")
        queued = (page.inner_text("#run-status"), page.inner_text("#run-phase"))
        release.set()
        page.wait_for_selector("#chart svg.report-chart polyline.series")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-run-korean.png"), full_page=True)
        done = (page.inner_text("#run-status"), page.inner_text("a.button[href$='.csv']"))
        chart_title = page.text_content("#chart svg > title")
        page.goto(f"{live_server.url}/reports/{SLUG}/")
        detail = (
            page.inner_text("button.primary"),
            page.inner_text("h2"),
            page.inner_text("label:has(input[name=time_zone])"),
        )

    assert list_page == {
        "lang": "ko",
        "heading": "사용량 보고서",
        "title": "모델별 일일 토큰과 비용",
        "button": "지금 실행",
    }
    assert queued == ("대기 중", "시작을 기다리는 중…")
    assert statuses[0] == "queued"
    assert statuses[-1] == "succeeded"
    assert done == ("완료", "CSV 다운로드")
    assert chart_title == f"{runs_in_background.x_column}별 {runs_in_background.y_column}"
    assert detail[0] == "보고서 실행"
    assert detail[1] == "실행 기록"
    assert detail[2].startswith("시간대")
