from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from analytics.params import ReportParamsError
from analytics.services import report_params_validate


class ReportParamsForm(forms.Form):
    start_date = forms.DateField(label=_("Start date"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=_("End date"), widget=forms.DateInput(attrs={"type": "date"}))
    model_id = forms.CharField(required=False, max_length=200, label=_("Model (optional)"))
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, to_field_name="name", label=_("Group (optional)")
    )
    time_zone = forms.CharField(
        required=False, max_length=64, label=_("Time zone"),
        help_text=_("Days are calendar days here, e.g. Asia/Seoul or UTC."),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        try:
            params = report_params_validate(params=self.report_params_raw(cleaned))
        except ReportParamsError as error:
            raise forms.ValidationError(error.localized()) from error
        cleaned["params"] = params.to_json()
        return cleaned

    @staticmethod
    def report_params_raw(cleaned: dict[str, Any]) -> dict[str, Any]:
        group = cleaned.get("group")
        return {
            "start_date": cleaned.get("start_date"),
            "end_date": cleaned.get("end_date"),
            "model_id": cleaned.get("model_id") or None,
            "group": group.name if group else None,
            "time_zone": cleaned.get("time_zone") or None,
        }
