"""The governance admin through Django's test client: admins change, analysts look, users don't."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from dataplane.stores.base import CachedAnswer, TokenCount
from quotas import services
from quotas.models import GroupPolicy, PolicyOutbox, PreparedResponse, QuotaPolicy, UserPolicyOverride
from quotas.selectors import effective_policy_compute, usage_charges

pytestmark = pytest.mark.django_db

POLICY_FORM = {
    "name": "Standard",
    "description": "",
    "is_default": "on",
    "ten_minute_total": "30000",
    "ten_minute_input": "",
    "ten_minute_output": "",
    "monthly_total": "2000000",
    "monthly_input": "",
    "monthly_output": "",
    "monthly_budget_usd": "50.00",
    "max_tokens_cap": "",
    "cache_scope": "per_user",
    "guardrail": "default",
    "guardrail_identifier": "",
    "guardrail_version": "",
    "guardrail_stream_mode": "sync",
}


def _use_tokens(store, user, *, input_tokens: int, output_tokens: int) -> None:
    policy = effective_policy_compute(user=user)
    reservation = store.reserve(
        sub=user.sub,
        charges=usage_charges(policy=policy),
        estimate=TokenCount(input=input_tokens, output=output_tokens),
    )
    store.settle(reservation=reservation, actual=TokenCount(input=input_tokens, output=output_tokens))


def _window(html: str, kind: str) -> str:
    match = re.search(rf'<div class="gw-window gw-(\w+)" data-window="{kind}">(.*?)</div>\s*</div>', html, re.S)
    assert match, f"no {kind} window in the page"
    return match.group(0)


def test_admin_changes_a_policy_and_it_is_published(client, admin_user, alice, default_policy, gateway_store, drain):
    client.force_login(admin_user)
    url = f"/admin/quotas/quotapolicy/{default_policy.pk}/change/"
    assert client.get(url).status_code == 200
    with drain():
        response = client.post(url, POLICY_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert gateway_store.policy_get(alice.sub).ten_minute.total == 30_000


def test_admin_chooses_a_named_guardrail_and_shared_cache(
    client, admin_user, alice, default_policy, gateway_store, drain
):
    client.force_login(admin_user)
    url = f"/admin/quotas/quotapolicy/{default_policy.pk}/change/"
    form = {**POLICY_FORM, "guardrail": "named", "guardrail_identifier": "abc123xyz", "guardrail_version": "3",
            "guardrail_stream_mode": "async", "cache_scope": "shared"}
    with drain():
        response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    published = gateway_store.policy_get(alice.sub)
    assert published.cache_scope == "shared"
    assert published.guardrail is not None
    assert not published.guardrail.use_default
    assert (published.guardrail.identifier, published.guardrail.version, published.guardrail.stream_mode) == (
        "abc123xyz", "3", "async")


def test_admin_refuses_a_named_guardrail_without_id_or_version(client, admin_user, default_policy):
    client.force_login(admin_user)
    url = f"/admin/quotas/quotapolicy/{default_policy.pk}/change/"
    response = client.post(url, {**POLICY_FORM, "guardrail": "named", "guardrail_version": "latest"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "A named guardrail needs its id" in page
    assert "A named guardrail needs a version: a number such as 1, or DRAFT." in page


def test_a_new_policy_is_per_user_cache_with_the_stack_guardrail(alice, default_policy):
    from quotas.selectors import effective_policy_compute

    policy = effective_policy_compute(user=alice)
    assert policy.cache_scope == "per_user"
    assert policy.guardrail is not None
    assert policy.guardrail.use_default
    assert policy.guardrail.stream_mode == "sync"


def test_admin_sees_field_errors(client, admin_user, default_policy):
    client.force_login(admin_user)
    response = client.post(
        "/admin/quotas/quotapolicy/add/", {**POLICY_FORM, "name": "Other", "ten_minute_input": "40000"}
    )
    assert response.status_code == 200
    assert "The 10-minute input limit (40,000) is above the 10-minute total (30,000)." in response.content.decode()
    assert "“Standard” is already the default policy" in response.content.decode()


def test_group_policy_inline_on_the_group_page(client, superuser, alice, default_policy, gateway_store, drain):
    # Groups live in django.contrib.auth, outside the Gateway admins' governed apps: a superuser here.
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000)
    client.force_login(superuser)
    with drain():
        response = client.post(
            "/admin/auth/group/add/",
            {
                "name": "Interns",
                "quota_policy_assignment-TOTAL_FORMS": "1",
                "quota_policy_assignment-INITIAL_FORMS": "0",
                "quota_policy_assignment-0-policy": str(strict.pk),
                "pooled_budget-TOTAL_FORMS": "0",
                "pooled_budget-INITIAL_FORMS": "0",
                "model_access-TOTAL_FORMS": "0",
                "model_access-INITIAL_FORMS": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    group = Group.objects.get(name="Interns")
    assert GroupPolicy.objects.get(group=group).policy == strict
    with drain():
        alice.groups.add(group)
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"


def test_user_page_shows_effective_policy_and_live_usage_bars(client, admin_user, alice, default_policy, gateway_store):
    _use_tokens(gateway_store, alice, input_tokens=15_000, output_tokens=500)  # 77.5 % of 20,000
    client.force_login(admin_user)
    html = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "Effective policy" in html
    assert "The default policy (no override, no group policy)." in html
    ten = _window(html, "10m")
    assert 'class="gw-window gw-warn"' in ten
    assert "15,500 / 20,000 tokens (78%)" in ten
    assert "resets" in ten
    month = _window(html, "month")
    assert 'class="gw-window gw-ok"' in month
    assert "15,500 / 1,000,000 tokens (2%)" in month
    assert "Cache: per user" in html
    assert "Bedrock guardrail: the stack's default (sync)" in html


def test_red_bar_at_ninety_percent(client, admin_user, alice, default_policy, gateway_store):
    _use_tokens(gateway_store, alice, input_tokens=18_000, output_tokens=100)
    client.force_login(admin_user)
    html = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert 'class="gw-window gw-bad"' in _window(html, "10m")


def test_store_down_pages_render_and_changes_are_saved_pending(
    client, admin_user, alice, default_policy, dead_store, sqlite_store, use_store, drain
):
    use_store(dead_store)
    client.force_login(admin_user)
    html = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "Store unavailable:" in html

    with drain():
        response = client.post(f"/admin/quotas/quotapolicy/{default_policy.pk}/change/", POLICY_FORM)
    assert response.status_code == 302
    assert QuotaPolicy.objects.get(pk=default_policy.pk).ten_minute_total == 30_000
    assert PolicyOutbox.objects.filter(sub=alice.sub, status="pending").exists()
    html = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert re.search(r'class="gw-pending">\d+ pending', html)
    assert "DynamoDB" in html  # the last error, in words
    live = client.get("/admin/quotas/quotapolicy/live-usage/").content.decode()
    assert "Store unavailable:" in live
    assert "pending" in live

    use_store(sqlite_store)
    response = client.post(
        "/admin/quotas/policyoutbox/", {"action": "drain_now", "_selected_action": [PolicyOutbox.objects.first().pk]}
    )
    assert response.status_code == 302
    assert not PolicyOutbox.objects.filter(status="pending").exists()
    assert sqlite_store.policy_get(alice.sub).ten_minute.total == 30_000


def test_reset_actions_zero_one_window_at_a_time(client, admin_user, alice, default_policy, gateway_store):
    _use_tokens(gateway_store, alice, input_tokens=1000, output_tokens=200)
    client.force_login(admin_user)
    response = client.post(
        "/admin/accounts/user/", {"action": "reset_ten_minute_window", "_selected_action": [alice.pk]}, follow=True
    )
    assert "Reset the current 10-minute window" in response.content.decode()
    ten, month = gateway_store.usage_read(
        sub=alice.sub, charges=usage_charges(policy=effective_policy_compute(user=alice))
    )
    assert (ten.total, month.total) == (0, 1200)
    client.post("/admin/accounts/user/", {"action": "reset_month_window", "_selected_action": [alice.pk]})
    ten, month = gateway_store.usage_read(
        sub=alice.sub, charges=usage_charges(policy=effective_policy_compute(user=alice))
    )
    assert month.total == 0


def test_republish_action_writes_a_new_version(client, admin_user, alice, default_policy, gateway_store, drain):
    with drain():
        services.policy_publish_request(users=[alice], force=True)
    published = gateway_store.policy_get(alice.sub)
    client.force_login(admin_user)
    before = PolicyOutbox.objects.filter(sub=alice.sub).count()
    with drain():
        response = client.post(
            "/admin/accounts/user/", {"action": "republish_selected", "_selected_action": [alice.pk]}, follow=True
        )
    assert "Queued 1 policy for publishing." in response.content.decode()
    assert PolicyOutbox.objects.filter(sub=alice.sub).count() == before + 1
    # The same document again, under a newer version: the store took it although nothing changed.
    republished = gateway_store.policy_get(alice.sub)
    assert republished.version > published.version
    assert republished.to_document() | {"version": 0} == published.to_document() | {"version": 0}


def test_user_override_inline_on_the_user_page(client, admin_user, alice, default_policy, gateway_store, drain):
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=10, monthly_total=100)
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "policy_override-TOTAL_FORMS" in page
    assert "model_access-TOTAL_FORMS" in page
    UserPolicyOverride.objects.create(user=alice, policy=strict)
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "This user&#x27;s own override." in page or "This user's own override." in page


def test_live_usage_page_lists_top_users_and_purges_the_cache(
    client, admin_user, alice, bob, default_policy, gateway_store
):
    _use_tokens(gateway_store, alice, input_tokens=5000, output_tokens=0)
    _use_tokens(gateway_store, bob, input_tokens=100, output_tokens=0)
    gateway_store.cache_put(
        "k" * 64, CachedAnswer(text="hi", usage=TokenCount(1, 1), model_id="demo.echo-v1"), ttl_seconds=600
    )
    client.force_login(admin_user)
    html = client.get("/admin/quotas/quotapolicy/live-usage/").content.decode()
    assert html.index(">alice</a>") < html.index(">bob</a>")
    assert "25% of 20,000" in html
    response = client.post("/admin/quotas/quotapolicy/live-usage/", {"purge_cache": "1"}, follow=True)
    assert "Purged 1 cached answer(s)." in response.content.decode()
    assert gateway_store.cache_get("k" * 64) is None
    assert "Live usage" in client.get("/admin/").content.decode()


def test_purge_prepared_response_action(client, admin_user, gateway_store, drain):
    with drain():
        prepared = services.prepared_save(prepared=PreparedResponse(question="Hello?", answer="Hi."))
    client.force_login(admin_user)
    with drain():
        client.post(
            "/admin/quotas/preparedresponse/", {"action": "purge_from_store", "_selected_action": [prepared.pk]}
        )
    prepared.refresh_from_db()
    assert prepared.enabled is False
    assert gateway_store.prepared_get(question_key=prepared.question_key, model_id="") is None


# -- who may do what ----------------------------------------------------------------------------
def _editable_controls(html: str) -> list[str]:
    form = html.split('id="content-main"')[1]
    return re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*>', form)


def test_analyst_sees_read_only_pages_and_cannot_post(client, analyst_user, alice, default_policy, gateway_store):
    _use_tokens(gateway_store, alice, input_tokens=700, output_tokens=0)
    client.force_login(analyst_user)
    policy_url = f"/admin/quotas/quotapolicy/{default_policy.pk}/change/"
    page = client.get(policy_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert _editable_controls(page.content.decode()) == []
    assert client.post(policy_url, POLICY_FORM).status_code == 403
    assert QuotaPolicy.objects.get(pk=default_policy.pk).ten_minute_total == 20_000
    assert client.post("/admin/quotas/quotapolicy/add/", POLICY_FORM).status_code == 403

    user_page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert 'name="_save"' not in user_page
    assert _editable_controls(user_page) == []
    assert "700 / 20,000 tokens" in user_page  # analysts read usage too

    live = client.get("/admin/quotas/quotapolicy/live-usage/")
    assert live.status_code == 200
    assert "Purge the answer cache" not in live.content.decode()
    assert client.post("/admin/quotas/quotapolicy/live-usage/", {"purge_cache": "1"}).status_code == 403

    assert "reset_ten_minute_window" not in client.get("/admin/accounts/user/").content.decode()
    client.post("/admin/accounts/user/", {"action": "reset_ten_minute_window", "_selected_action": [alice.pk]})
    ten, _ = gateway_store.usage_read(sub=alice.sub, charges=usage_charges(policy=effective_policy_compute(user=alice)))
    assert ten.total == 700


def test_plain_users_get_no_admin(client, alice):
    client.force_login(alice)
    for url in ("/admin/", "/admin/quotas/quotapolicy/", "/admin/quotas/quotapolicy/live-usage/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url


def test_gateway_admin_assigns_a_group_policy(client, admin_user, alice, default_policy, gateway_store, drain):
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000)
    group = Group.objects.create(name="Interns")
    alice.groups.add(group)
    client.force_login(admin_user)
    with drain():
        response = client.post("/admin/quotas/grouppolicy/add/", {"group": group.pk, "policy": strict.pk})
    assert response.status_code == 302
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"
    duplicate = client.post("/admin/quotas/grouppolicy/add/", {"group": group.pk, "policy": default_policy.pk})
    assert "Group policy with this Group already exists." in duplicate.content.decode()
