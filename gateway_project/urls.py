from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from accounts.languages import language_set
from quotas.admin_views import model_access_view, model_test_view

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
