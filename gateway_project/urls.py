from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy
from django.views.i18n import JavaScriptCatalog

from accounts.languages import language_set

admin.site.site_header = gettext_lazy("AI Gateway governance")
admin.site.site_title = "AI Gateway"
admin.site.index_title = gettext_lazy("Govern models, quotas and usage")
# One sign-in page, allauth's, with its throttling and lock-out after failed attempts; the
# admin's own form had neither.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # a wrapped view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", language_set, name="set_language"),  # the language switch
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("reports/", include("analytics.urls")),
    path("", include("chat.urls")),
]
