"""Extra admin pages of the governance app: who can use which model, and "test this model".

Routed in `gateway_project/urls.py` under /admin/ and wrapped in `admin.site.admin_view`, so
they have the admin's sign-in, "staff only" check and CSRF; each view then checks the one
permission it needs.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from quotas.access_matrix import access_groups_filter, access_matrix_build, access_users_filter
from quotas.model_test import ModelTestResult, catalogue_model_test
from quotas.models import ModelCatalogueEntry

USERS_PER_PAGE = 50
# Each test is a real, billed call that the request waits for: a few at a time.
MAX_MODELS_PER_TEST = 5


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None  # a hand-edited query string lists everything rather than failing


def model_access_view(request: HttpRequest) -> HttpResponse:
    """Users and groups by enabled models; each cell names the grants that allow it."""
    if not request.user.has_perm("quotas.view_modelcatalogueentry"):
        raise PermissionDenied
    user_query = request.GET.get("q", "").strip()[:150]
    group_id = _int_or_none(request.GET.get("group"))
    model_id = _int_or_none(request.GET.get("model"))

    enabled = ModelCatalogueEntry.objects.filter(enabled=True).order_by("display_name", "model_id")
    columns = enabled.filter(pk=model_id) if model_id is not None else enabled
    users_page = Paginator(
        access_users_filter(user_query=user_query, group_id=group_id, model_id=model_id), USERS_PER_PAGE
    )
    page = users_page.get_page(request.GET.get("page"))
    # A search for a person lists people; the groups would only be noise then.
    groups = Group.objects.none() if user_query else access_groups_filter(group_id=group_id, model_id=model_id)
    matrix = access_matrix_build(users=page.object_list, groups=groups, models=columns)

    context = {
        **admin.site.each_context(request),
        "title": _("Who can use which model"),
        "matrix": matrix,
        "page": page,
        "query": user_query,
        "group_id": group_id,
        "model_id": model_id,
        "all_groups": list(Group.objects.order_by("name").values_list("pk", "name")),
        "all_models": list(enabled.values_list("pk", "display_name")),
    }
    return TemplateResponse(request, "admin/quotas/model_access.html", context)


# -- "Test this model" ---------------------------------------------------------------------------
def model_test_message(result: ModelTestResult) -> tuple[int, str]:
    """The admin message for one test: the answer's excerpt, tokens and latency, or the error."""
    if result.ok:
        tokens = _("%(input)s in / %(output)s out") % {
            "input": "?" if result.input_tokens is None else result.input_tokens,
            "output": "?" if result.output_tokens is None else result.output_tokens,
        }
        text = _("Test of %(model)s: answered in %(ms)s ms (%(tokens)s tokens): “%(excerpt)s”") % {
            "model": result.model_id,
            "ms": result.latency_ms,
            "tokens": tokens,
            "excerpt": result.excerpt,
        }
        return messages.SUCCESS, text
    # The data plane's own words (English, Django-free) name the action and the model.
    text = _("Test of %(model)s failed after %(ms)s ms: %(error_type)s: %(error)s") % {
        "model": result.model_id,
        "ms": result.latency_ms,
        "error_type": result.error_type,
        "error": result.error,
    }
    return messages.ERROR, text


@admin.action(description=gettext_lazy("Test the selected models (one small real call each)"), permissions=["change"])
def test_selected_models(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    entries = list(queryset.order_by("display_name")[:MAX_MODELS_PER_TEST])
    for entry in entries:
        level, text = model_test_message(catalogue_model_test(entry=entry))
        modeladmin.message_user(request, text, level)
    if queryset.count() > len(entries):
        modeladmin.message_user(
            request, _("Only the first %(count)s models were tested.") % {"count": len(entries)}, messages.WARNING
        )


@require_POST
def model_test_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The change page's "Test this model" button: test, say how it went, and go back."""
    if not request.user.has_perm("quotas.change_modelcatalogueentry"):
        raise PermissionDenied
    entry = get_object_or_404(ModelCatalogueEntry, pk=pk)
    level, text = model_test_message(catalogue_model_test(entry=entry))
    messages.add_message(request, level, text)
    return HttpResponseRedirect(reverse("admin:quotas_modelcatalogueentry_change", args=[entry.pk]))
