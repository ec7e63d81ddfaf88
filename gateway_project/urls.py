from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy
from django.views.i18n import JavaScriptCatalog

from accounts.languages import language_set
from quotas.admin_index import admin_index_tidy
from quotas.admin_views import model_access_view, model_test_view

admin.site.site_header = gettext_lazy("AI Gateway governance")
admin.site.site_title = "AI Gateway"
admin.site.index_title = gettext_lazy("Govern models, quotas and usage")
# One sign-in page, allauth's, with its throttling and lock-out after failed attempts; the
# admin's own form had neither.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # allauth's documented wrapper
admin_index_tidy(admin.site)

urlpatterns = [
    # Governance pages beside the admin's own, behind its sign-in and staff check (admin_view).
    path("admin/quotas/model-access/", admin.site.admin_view(model_access_view), name="quotas_model_access"),
    path("admin/quotas/model-test/<int:pk>/", admin.site.admin_view(model_test_view), name="quotas_model_test"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", language_set, name="set_language"),  # the language switch
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("reports/", include("analytics.urls")),
    path("", include("api.urls")),
    path("", include("chat.urls")),
]
