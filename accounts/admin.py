from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "sub")
    search_fields = ("username", "email", "first_name", "last_name", "sub")
    readonly_fields = ("sub", "last_login", "date_joined")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Gateway identity", {"fields": ("sub",)}))
    # Only a superuser may hand out superuser status or raw permissions; a gateway admin who
    # could would be one click from every power in the site.
    superuser_only_fields = ("is_superuser", "user_permissions")

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001, ANN201
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return (*fields, *self.superuser_only_fields)
