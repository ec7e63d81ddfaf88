"""HTTP edges of the chat: the page, `/api/me` and AppSync's HTTP publish (`POST /event`)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from accounts.cognito_tokens import CognitoTokenError, CognitoUnavailable, id_token_for
from accounts.models import User
from chat import protocol
from chat.flood import publish_allowed
from chat.history.retention import retention_for
from chat.protocol import BAD_REQUEST, THROTTLED, UNAUTHORIZED, ProtocolError
from chat.selectors import me_for, transport_for
from chat.turns import publish_inbound
from dataplane.channels import inbound_channel, outbound_channel
from dataplane.requests import parse_json
from dataplane.stores.base import MIN_USEFUL_ANSWER_TOKENS
from dataplane.windows import WINDOW_KINDS, WINDOW_LABELS, usage_thresholds

# The answer lengths a user can pick: a shorter maximum reserves less of the quota.
MAX_TOKEN_CHOICES = (2048, 1024, 512, 256, 128)


@login_required
@ensure_csrf_cookie  # the page's JS sends it back in X-CSRFToken on POST /event
def chat_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # login_required
    sub = user.sub
    # The page's JS takes the wire's window kinds, their names and the usage levels from here,
    # so it never keeps its own copy of a rule the gateway defines.
    windows = {
        kind: {"title": _(WINDOW_LABELS[kind].title), "adjective": _(WINDOW_LABELS[kind].adjective)}
        for kind in WINDOW_KINDS
    }
    retention = retention_for(user=request.user)
    chat_config = {
        "sub": sub, "inbound": inbound_channel(sub), "outbound": outbound_channel(sub), "meUrl": "/api/me",
        "windows": windows, "usageLevels": usage_thresholds(),
        "history": {"url": reverse("chat:conversations"), **retention.as_wire()},
        # Below this room a turn is refused rather than fitted: the page says so in a refusal.
        "minUsefulAnswerTokens": MIN_USEFUL_ANSWER_TOKENS,
        **transport_for(user=request.user),
    }
    usage_windows = [(kind, labels["title"]) for kind, labels in windows.items()]
    context = {
        "chat_config": chat_config, "usage_windows": usage_windows, "retention": retention,
        "max_token_choices": MAX_TOKEN_CHOICES,
    }
    return render(request, "chat/chat.html", context)


@require_GET
def api_token(request: HttpRequest) -> JsonResponse:
    """A fresh Cognito ID token for the page to present to AppSync Events (never cached)."""
    if not request.user.is_authenticated:
        response = _unauthenticated()
    else:
        try:
            token = id_token_for(user=request.user)
        except CognitoTokenError as error:
            status = 503 if isinstance(error, CognitoUnavailable) else 403
            response = JsonResponse(
                {"errors": [{"errorType": error.error_type, "message": error.message}]}, status=status
            )
        else:
            response = JsonResponse(
                {"idToken": token.token, "expiresAt": int(token.expires_at), "expiresIn": int(token.seconds_left())}
            )
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _unauthenticated() -> JsonResponse:
    body = {"errors": [{"errorType": UNAUTHORIZED, "message": "Sign in first."}]}
    return JsonResponse(body, status=401)


@require_GET
def api_me(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return _unauthenticated()
    return JsonResponse(me_for(user=request.user))


_STATUS = {BAD_REQUEST: 400, UNAUTHORIZED: 403, THROTTLED: 429}


async def _publish_body(request: HttpRequest, *, sub: str) -> dict[str, Any]:
    """The JSON body of a publish its sender may make now; a ProtocolError says why not."""
    if request.content_type != "application/json":
        raise ProtocolError(BAD_REQUEST, "Send the publish as application/json.")
    try:
        body = parse_json(request.body)
    except ValueError:
        raise ProtocolError(BAD_REQUEST, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ProtocolError(BAD_REQUEST, 'The body is {"channel": ..., "events": [...]}.')
    if not await publish_allowed(sub):
        raise ProtocolError(THROTTLED, "Too many publishes; wait a moment and try again.")
    return body


@require_POST
async def publish_events(request: HttpRequest) -> JsonResponse:
    """AppSync's HTTP publish: `{"channel", "events"}` → `{"successful", "failed"}`.

    CSRF protection stays on (the page sends the token), and only a JSON body is read, so a
    cross-site form cannot publish in a signed-in user's name. Turns run in the worker pool;
    their answers arrive on the user's outbound channel, not in this response.
    """
    user = await request.auser()
    if not user.is_authenticated:
        return _unauthenticated()
    try:
        channel, outcome = protocol.inbound_publish(user.sub, await _publish_body(request, sub=user.sub))
    except ProtocolError as error:
        return JsonResponse({"errors": error.as_errors()}, status=_STATUS.get(error.error_type, 400))
    await publish_inbound(sub=user.sub, username=user.get_username(), channel=channel, events=outcome.accepted)
    return JsonResponse({"successful": outcome.successful(), "failed": outcome.failed})
