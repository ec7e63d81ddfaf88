from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from api.models import ApiKey
from quotas.models import ModelCatalogueEntry
from quotas.selectors import allowed_models

MAX_KEYS_PER_USER = 20


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80, help_text=_("What the key is for, e.g. “laptop script”."))
    expires_at = forms.DateTimeField(
        label=_("Expires"), required=False, help_text=_("Empty: never expires."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    models = forms.ModelMultipleChoiceField(
        label=_("Only these models"), queryset=ModelCatalogueEntry.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every model you may use."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        models_field = self.fields["models"]
        assert isinstance(models_field, forms.ModelMultipleChoiceField)
        models_field.queryset = allowed_models(user=user)

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError(_("Pick a time in the future."))
        return expires_at

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        active = ApiKey.objects.filter(user=self.user, revoked_at__isnull=True).count()
        if active >= MAX_KEYS_PER_USER:
            raise forms.ValidationError(
                _("You have %(count)d active keys, the most allowed. Revoke one first.") % {"count": active}
            )
        return cleaned
