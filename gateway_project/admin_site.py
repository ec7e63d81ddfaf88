"""The gateway's admin site: its titles, one sign-in page (allauth's), and a tidy index.

Installed as Django's default site (`gateway_project.apps.GatewayAdminConfig` in
INSTALLED_APPS instead of `django.contrib.admin`), so `admin.site` and every
`@admin.register` use it.
"""
from __future__ import annotations

from typing import Any

from allauth.account.decorators import secure_admin_login
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy

from quotas.admin_index import app_list_tidy


class GatewayAdminSite(AdminSite):
    site_header = gettext_lazy("AI Gateway governance")
    site_title = "AI Gateway"
    index_title = gettext_lazy("Govern models, quotas and usage")

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """allauth's sign-in, with its throttling and lock-out after failed attempts (the
        admin's own form has neither), through allauth's documented wrapper."""
        return secure_admin_login(super().login)(request, extra_context)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The index and the sidebar: the gateway's sections first, one "Accounts" section."""
        apps = super().get_app_list(request, app_label)
        return apps if app_label else app_list_tidy(apps)
