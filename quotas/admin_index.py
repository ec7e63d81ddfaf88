"""A tidy admin index: the gateway's sections first, one "Accounts" section, the rest after.

Django lists every installed app on its own: the project's `accounts` (users), `auth` (groups)
and allauth's `account` (e-mail addresses) showed up as three sections, two of them called
"Accounts", between the gateway's own. Here they become one section, and the sections that
only support the gateway (schedules of Celery beat, allauth's social sign-in) come last.
`gateway_project.admin_site.GatewayAdminSite` uses it for its index and sidebar.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

ACCOUNTS = "accounts"
# Merged into "Accounts": Django's groups (the roles) and allauth's e-mail addresses.
MERGED_INTO_ACCOUNTS = ("auth", "account")
ORDER = ("quotas", "analytics", "chat", "api", ACCOUNTS, "django_celery_beat", "socialaccount")
RENAMED = {"django_celery_beat": _("Schedules (Celery beat)"), "socialaccount": _("Sign-in providers")}


def app_list_tidy(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The index's sections, merged and ordered (a pure function of Django's list)."""
    by_label = {app["app_label"]: app for app in apps}
    accounts = by_label.get(ACCOUNTS)
    for label in MERGED_INTO_ACCOUNTS:
        other = by_label.pop(label, None)
        if other is None:
            continue
        if accounts is None:
            accounts = by_label[ACCOUNTS] = {**other, "app_label": ACCOUNTS, "models": list(other["models"])}
        else:
            accounts["models"] = [*accounts["models"], *other["models"]]
    if accounts is not None:
        accounts["name"] = _("Accounts")
        accounts["models"].sort(key=lambda model: str(model["name"]))
    for label, name in RENAMED.items():
        if label in by_label:
            by_label[label]["name"] = name
    rank = {label: index for index, label in enumerate(ORDER)}
    return sorted(by_label.values(), key=lambda app: (rank.get(app["app_label"], len(ORDER)), str(app["name"])))
