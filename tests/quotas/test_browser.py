"""A real headless Chromium on the admin's user page: the live usage bars as an admin sees them."""
from __future__ import annotations

import pytest

from dataplane.stores.base import TokenCount
from quotas.selectors import effective_policy_compute, usage_charges
from tests.browser import ARTIFACTS, chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sees_live_usage_bars_on_a_users_page(
    live_server, admin_user, alice, password, default_policy, demo_model, gateway_store
):
    charges = usage_charges(policy=effective_policy_compute(user=alice))
    used = TokenCount(input=15_200, output=900)  # 80.5 % of the 10-minute window: amber
    gateway_store.settle(reservation=gateway_store.reserve(sub=alice.sub, charges=charges, estimate=used), actual=used)
    user_url = f"{live_server.url}/admin/accounts/user/{alice.pk}/change/"

    # Playwright's sync API runs an event loop on this thread: no ORM calls after this point.
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/accounts/user/{alice.pk}/change/")
        page.fill("input[name=login]", "ada")  # the admin signs in through allauth's page
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(user_url)

        ten_minute = page.locator('.gw-window[data-window="10m"]')
        month = page.locator('.gw-window[data-window="month"]')
        assert "gw-warn" in ten_minute.get_attribute("class")
        assert "16,100 / 20,000 tokens (80%)" in ten_minute.inner_text()
        assert "gw-ok" in month.get_attribute("class")
        bar = ten_minute.locator(".gw-bar > span")
        width = bar.evaluate("element => element.getBoundingClientRect().width")
        track = ten_minute.locator(".gw-bar").evaluate("element => element.getBoundingClientRect().width")
        assert 0.75 < width / track < 0.85  # the bar is drawn, at the right length
        colour = bar.evaluate("element => getComputedStyle(element).backgroundColor")
        assert colour == "rgb(240, 163, 10)"  # amber, from static/quotas/admin.css
        assert "Standard" in page.locator(".gw-panel").inner_text()

        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".gw-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "admin-user-usage.png"), full_page=False)
    assert (ARTIFACTS / "admin-user-usage.png").stat().st_size > 10_000
