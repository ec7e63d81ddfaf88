from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "AI Gateway governance"
admin.site.site_title = "AI Gateway"
admin.site.index_title = "Govern models, quotas and usage"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("reports/", include("analytics.urls")),
    path("", include("chat.urls")),
]
