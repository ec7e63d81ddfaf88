
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.roles import GATEWAY_ADMINS
from accounts.services import user_staff_sync


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display: tuple[str, ...] = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "sub")
    search_fields = ("username", "email", "first_name", "last_name", "sub")
    # Staff status follows role membership (accounts.services.user_staff_sync): put someone in
    # Analysts or Gateway admins instead of ticking it, so no hidden second step exists.
    readonly_fields = ("sub", "last_login", "date_joined", "is_staff")
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), (_("Gateway identity"), {"fields": ("sub", "language")}))
    # Only a superuser may hand out superuser status or raw permissions; a gateway admin who
    # could would be one click from every power in the site.
    superuser_only_fields = ("is_superuser", "user_permissions")

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Also when only superuser status changed (no membership change fires the signal).
        user_staff_sync(user=form.instance)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return (*fields, *self.superuser_only_fields)

    # A gateway admin who could change a superuser or another admin could set their password
    # or e-mail (then reset the password) and sign in as them. Those accounts are view-only to
    # anyone but a superuser; everyone may still change their own.
    def _protected_from(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser or obj.pk == request.user.pk:
            return False
        return obj.is_superuser or obj.groups.filter(name=GATEWAY_ADMINS).exists()

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and not self._protected_from(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not self._protected_from(request, obj)
