"""The policy form offers "no token limits" as the explicit choice the model requires."""

from __future__ import annotations

import pytest

from quotas.models import QuotaPolicy

pytestmark = pytest.mark.django_db
FORM = {"name": "Research", "cache_scope": "per_user", "guardrail": "none", "guardrail_stream_mode": "sync"}


def test_an_admin_can_choose_unlimited_in_the_form(client, admin_user, default_policy):
    client.force_login(admin_user)
    assert 'name="unlimited"' in client.get("/admin/quotas/quotapolicy/add/").content.decode()
    empty = client.post("/admin/quotas/quotapolicy/add/", FORM)
    assert empty.status_code == 200  # an empty form is not taken to mean unlimited
    chosen = client.post("/admin/quotas/quotapolicy/add/", {**FORM, "unlimited": "on"})
    assert chosen.status_code == 302
    policy = QuotaPolicy.objects.get(name="Research")
    assert policy.unlimited
    assert policy.ten_minute_total is None
    assert policy.monthly_total is None
