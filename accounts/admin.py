from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "sub")
    search_fields = ("username", "email", "first_name", "last_name", "sub")
    readonly_fields = ("sub", "last_login", "date_joined")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Gateway identity", {"fields": ("sub",)}))
