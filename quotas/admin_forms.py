"""Admin forms for the checks that read other rows (models' `clean` reads only their own fields)."""
from __future__ import annotations

from typing import Any

from django import forms

from quotas.models import PreparedResponse, QuotaPolicy
from quotas.services.policies import policy_default_problem
from quotas.services.prepared import prepared_question_problem


class QuotaPolicyAdminForm(forms.ModelForm):
    class Meta:
        model = QuotaPolicy
        fields = (
            "name", "description", "is_default", "unlimited", *QuotaPolicy.LIMIT_FIELDS, "monthly_budget_usd",
            "max_tokens_cap", "never_cache", "log_prompts", "cache_scope",
            "guardrail", "guardrail_identifier", "guardrail_version", "guardrail_stream_mode",
            "history_retention_days",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        problem = policy_default_problem(policy=self.instance, is_default=bool(cleaned.get("is_default")))
        if problem:
            self.add_error("is_default", problem)
        return cleaned


class PreparedResponseAdminForm(forms.ModelForm):
    class Meta:
        model = PreparedResponse
        fields = ("question", "answer", "model", "enabled", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        question = cleaned.get("question")
        if question:
            model, pk = cleaned.get("model"), self.instance.pk
            problem = prepared_question_problem(question=question, model=model, exclude_pk=pk)
            if problem:
                self.add_error("question", problem)
        return cleaned
