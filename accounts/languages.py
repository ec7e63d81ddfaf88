"""The user's language: chosen with the switch, kept on the user, applied on every request."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from accounts.services import user_language_set


class UserLanguageMiddleware:
    """After LocaleMiddleware and authentication: a signed-in user's saved choice wins over the
    browser's Accept-Language and a cookie left by someone else on a shared computer.

    Sync and async: a sync-only middleware would make Django run every async view (the `/v1`
    door) through its one sync thread, so concurrent requests would queue there.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        _apply_saved_language(request, getattr(request, "user", None))
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        user = await request.auser() if hasattr(request, "auser") else None
        _apply_saved_language(request, user)
        return await self.get_response(request)


def _apply_saved_language(request: HttpRequest, user: Any) -> None:
    chosen = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
    if chosen and translation.check_for_language(chosen):
        translation.activate(chosen)
        request.LANGUAGE_CODE = chosen


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Django's `set_language` (cookie, redirect to `next`), plus the choice saved on the user."""
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and translation.check_for_language(language):
        user_language_set(user=request.user, language=language)
    return response
