"""Validation an admin sees on the field: model ids, limits, duplicates, the one default policy."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from dataplane.model_ids import model_id_problem
from quotas import services
from quotas.admin_forms import PreparedResponseAdminForm, QuotaPolicyAdminForm
from quotas.models import GroupPolicy, ModelCatalogueEntry, PreparedResponse, QuotaPolicy, UserPolicyOverride

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("provider", "model_id"),
    [
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("bedrock", "amazon.nova-pro-v1:0"),
        ("bedrock", "meta.llama3-1-70b-instruct-v1:0"),
        ("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
        ("bedrock", "eu.amazon.nova-lite-v1:0"),
        ("bedrock", "apac.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("bedrock", "global.anthropic.claude-sonnet-4-20250514-v1:0"),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:imported-model/abc123def"),
        ("bedrock", "arn:aws:bedrock:eu-west-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/x1y2"),
        ("bedrock", "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/pm-1"),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0"),
        ("demo", "demo.echo-v1"),
        ("openai", "gpt-4o-mini"),
        ("openai", "meta-llama/Llama-3.1-8B-Instruct"),
    ],
)
def test_valid_model_ids(provider, model_id):
    assert model_id_problem(provider=provider, model_id=model_id) is None


@pytest.mark.parametrize(
    ("provider", "model_id", "message"),
    [
        ("bedrock", "claude", "Not a Bedrock model id"),
        ("bedrock", "Anthropic.Claude", "Not a Bedrock model id"),
        ("bedrock", "xx.anthropic.claude-3-5-haiku-20241022-v1:0", "Unknown inference-profile prefix “xx.”"),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:foundation-thing/x", "must name one of"),
        ("bedrock", "arn:aws:bedrock:us-east-1:1234:imported-model/x", "Not a Bedrock ARN"),
        ("bedrock", "arn:aws:s3:::bucket", "Not a Bedrock ARN"),
        ("demo", "echo", "start with “demo.”"),
        ("openai", "gpt 4", "letters, digits"),
        ("openai", "gpt-4;rm -rf", "letters, digits"),
    ],
)
def test_invalid_model_ids_say_why(provider, model_id, message):
    assert message in model_id_problem(provider=provider, model_id=model_id)


CatalogueForm = modelform_factory(ModelCatalogueEntry, fields="__all__")
PolicyForm = QuotaPolicyAdminForm  # the one-default rule reads other rows: a form's check, not the model's


def test_catalogue_form_puts_the_model_id_error_on_the_field():
    form = CatalogueForm(
        data={"provider": "bedrock", "model_id": "not a model", "display_name": "X", "visibility": "public",
              "default_max_tokens": 10, "price_in_per_1k": "0", "price_out_per_1k": "0"}
    )
    assert not form.is_valid()
    assert "Not a Bedrock model id" in form.errors["model_id"][0]


def test_openai_model_needs_an_endpoint():
    form = CatalogueForm(
        data={"provider": "openai", "model_id": "gpt-4o-mini", "display_name": "GPT", "visibility": "private",
              "default_max_tokens": 10, "price_in_per_1k": "0", "price_out_per_1k": "0"}
    )
    assert not form.is_valid()
    assert "needs the URL of its endpoint" in form.errors["endpoint_url"][0]


def test_negative_prices_are_refused():
    form = CatalogueForm(
        data={"provider": "demo", "model_id": "demo.x", "display_name": "X", "visibility": "public",
              "default_max_tokens": 10, "price_in_per_1k": "-1", "price_out_per_1k": "0"}
    )
    assert not form.is_valid()
    assert form.errors["price_in_per_1k"] == ["A price cannot be negative."]


def _policy_data(**overrides):
    data = {"name": "Team", "ten_minute_total": "1000", "monthly_total": "50000"}
    data.update(overrides)
    return data


def test_negative_limits_are_refused_on_the_field():
    form = PolicyForm(data=_policy_data(ten_minute_total="-5"))
    assert not form.is_valid()
    assert "cannot be negative" in form.errors["ten_minute_total"][0]


def test_input_or_output_above_the_total_is_refused():
    form = PolicyForm(data=_policy_data(ten_minute_input="2000", monthly_output="60000"))
    assert not form.is_valid()
    assert form.errors["ten_minute_input"] == [
        "The 10-minute input limit (2,000) is above the 10-minute total (1,000)."
    ]
    assert "monthly output limit (60,000) is above the monthly total (50,000)" in form.errors["monthly_output"][0]


def test_a_second_default_policy_is_refused(default_policy):
    form = PolicyForm(data=_policy_data(is_default="on"))
    assert not form.is_valid()
    assert "“Standard” is already the default policy" in form.errors["is_default"][0]


def test_the_default_cannot_be_unticked(default_policy):
    form = PolicyForm(data=_policy_data(name="Standard"), instance=default_policy)
    assert not form.is_valid()
    assert "must always be a default policy" in form.errors["is_default"][0]


def test_duplicate_group_and_user_assignments_are_form_errors(default_policy, alice):
    group = Group.objects.create(name="Engineers")
    GroupPolicy.objects.create(group=group, policy=default_policy)
    UserPolicyOverride.objects.create(user=alice, policy=default_policy)
    group_form = modelform_factory(GroupPolicy, fields="__all__")(data={"group": group.pk, "policy": default_policy.pk})
    user_form = modelform_factory(UserPolicyOverride, fields="__all__")(
        data={"user": alice.pk, "policy": default_policy.pk}
    )
    assert not group_form.is_valid()
    assert "already exists" in group_form.errors["group"][0]
    assert not user_form.is_valid()
    assert "already exists" in user_form.errors["user"][0]


def test_duplicate_prepared_question_is_refused_up_to_case_and_punctuation():
    services.prepared_save(prepared=PreparedResponse(question="What is the AI gateway?", answer="A gateway."))
    form = PreparedResponseAdminForm(
        data={"question": "  what is the   ai gateway", "answer": "Another", "enabled": "on"}
    )
    assert not form.is_valid()
    assert "already exists for every model" in form.errors["question"][0]
    # The service refuses it too (a script, or a race between two admins).
    with pytest.raises(ValidationError, match="already exists for every model"):
        services.prepared_save(prepared=PreparedResponse(question="What is the AI gateway", answer="Another"))
    another = {"question": "What is a token?", "answer": "A piece.", "enabled": "on"}
    assert PreparedResponseAdminForm(data=another).is_valid()


def test_model_validation_reads_no_other_rows(default_policy, django_assert_num_queries):
    second_default = QuotaPolicy(name="Team", is_default=True, ten_minute_total=10, monthly_total=100)
    prepared = PreparedResponse(question="What is the AI gateway?", answer="A gateway.")
    with django_assert_num_queries(0):
        second_default.clean()
        prepared.clean()


# What the admin form always sends besides the limits (choice fields with defaults).
FORM_DEFAULTS = {"cache_scope": "per_user", "guardrail": "none", "guardrail_stream_mode": "sync"}


def policy_form(**data: str):
    return PolicyForm(data={**FORM_DEFAULTS, **data})


def test_a_monthly_limit_below_the_ten_minute_limit_is_refused():
    form = policy_form(
        **_policy_data(ten_minute_total="5000", monthly_total="1000", ten_minute_output="900", monthly_output="500")
    )
    assert not form.is_valid()
    assert form.errors["monthly_total"] == [
        "The monthly total limit (1,000) is below the 10-minute total limit (5,000). "
        "Raise the monthly limit or lower the 10-minute one."
    ]
    assert "monthly output limit (500) is below the 10-minute output limit (900)" in form.errors["monthly_output"][0]
    assert policy_form(**_policy_data(ten_minute_total="1000", monthly_total="1000")).is_valid()


def test_a_policy_with_only_a_name_is_refused_until_unlimited_is_chosen():
    only_a_name = policy_form(name="Team")
    assert not only_a_name.is_valid()
    assert "tick “no token limits”" in only_a_name.errors["ten_minute_total"][0]

    assert policy_form(name="Team", unlimited="on").is_valid()
    assert policy_form(name="Team", monthly_total="10").is_valid()  # one window capped is a choice too


def test_unlimited_with_limits_is_refused():
    form = policy_form(**_policy_data(unlimited="on"))
    assert not form.is_valid()
    assert "cannot also set limits" in form.errors["unlimited"][0]
