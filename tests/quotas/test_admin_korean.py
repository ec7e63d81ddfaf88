"""The gateway's admin customisations in Korean: labels, help texts, messages and validation."""

from __future__ import annotations

import pytest

from quotas.models import QuotaPolicy

pytestmark = pytest.mark.django_db
KOREAN = {"HTTP_ACCEPT_LANGUAGE": "ko"}


def test_the_index_and_the_governance_pages_speak_korean(client, admin_user, default_policy):
    from quotas.models import ModelCatalogueEntry

    ModelCatalogueEntry.objects.create(
        provider="demo", model_id="demo.echo-v1", display_name="Demo", available_to_all=True
    )
    client.force_login(admin_user)
    index = client.get("/admin/", **KOREAN).content.decode()
    access = client.get("/admin/quotas/model-access/", **KOREAN).content.decode()
    policy = client.get(f"/admin/quotas/quotapolicy/{default_policy.pk}/change/", **KOREAN).content.decode()
    policies = client.get("/admin/quotas/quotapolicy/", **KOREAN).content.decode()

    assert "게이트웨이 거버넌스" in index
    assert "사용량 분석" in index
    assert "누가 어떤 모델을 쓸 수 있나" in index
    assert "Gateway governance" not in index
    assert "사용자 또는 그룹" in access
    assert "모든 그룹" in access
    assert "모두에게 공개" in access
    assert "토큰 한도 없음" in policy
    assert "달력 월" in policy
    assert "기본 정책" in policy
    assert "그 밖의 모든 사람(기본)" in policies


def test_a_policy_error_is_explained_in_korean(client, admin_user, default_policy):
    client.force_login(admin_user)
    response = client.post(
        "/admin/quotas/quotapolicy/add/",
        {
            "name": "Tiny month",
            "ten_minute_total": "5000",
            "monthly_total": "100",
            "cache_scope": "per_user",
            "guardrail": "none",
            "guardrail_stream_mode": "sync",
        },
        **KOREAN,
    )
    assert response.status_code == 200
    assert "월 전체 한도(100)가 10분 전체 한도(5,000)보다 작습니다." in response.content.decode()
    assert not QuotaPolicy.objects.filter(name="Tiny month").exists()


def test_an_action_message_in_korean(client, admin_user, default_policy):
    client.force_login(admin_user)
    response = client.post(
        "/admin/quotas/quotapolicy/",
        {"action": "make_default", "_selected_action": [default_policy.pk]},
        follow=True,
        **KOREAN,
    )
    assert [str(message) for message in response.context["messages"]] == ["이제 “Standard”이(가) 기본 정책입니다."]
