"""The governance admin in a real Chromium: who can use which model, "Test this model", and
list columns that wrap instead of being cut off."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from quotas.models import GroupModelAccess, ModelCatalogueEntry, PolicyOutbox
from tests.browser import ARTIFACTS, chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LONG_ERROR = "ConditionalCheckFailedException: " + "the stored version is newer than this one; " * 6


def sign_in(page, base_url: str, next_path: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("input[name=login]", "ada")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def test_an_admin_reads_the_access_matrix_and_tests_a_model(live_server, admin_user, alice, password, default_policy):
    demo = ModelCatalogueEntry.objects.create(provider="demo", model_id="demo.echo-v1", display_name="Demo model")
    research = Group.objects.create(name="Research")
    research.user_set.add(alice)
    GroupModelAccess.objects.create(group=research, model=demo)
    PolicyOutbox.objects.create(sub=alice.sub, user=alice, policy=default_policy, version=7, last_error=LONG_ERROR)

    # Playwright's sync API runs an event loop on this thread: no ORM calls after this point.
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        sign_in(page, live_server.url, "/admin/quotas/modelcatalogueentry/", password)
        page.click("text=Who can use which model")
        page.wait_for_selector("#access-matrix")
        alice_cells = page.locator('tr[data-row="user:alice"] td').all_inner_texts()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-model-access.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/quotas/modelcatalogueentry/{demo.pk}/change/")
        page.click("#model-test-form button")
        page.wait_for_selector(".messagelist .success")
        message = page.inner_text(".messagelist .success")

        page.goto(f"{live_server.url}/admin/quotas/policyoutbox/")
        error_cell = page.locator("#result_list td.field-error").first
        cell_fits = error_cell.evaluate("cell => cell.scrollWidth <= cell.clientWidth + 1")
        page_fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shown = error_cell.inner_text()
        page.screenshot(path=str(ARTIFACTS / "admin-policy-outbox.png"), full_page=True)

    assert [" ".join(text.split()) for text in alice_cells] == ["Standard", "group: Research"]
    assert message.startswith("Test of demo.echo-v1: answered in "), message
    assert "tokens): “" in message
    assert cell_fits  # the long error wraps inside its column
    assert page_fits  # and the list does not push the page sideways
    assert shown.replace("\n", " ").startswith("ConditionalCheckFailedException: the stored version")
