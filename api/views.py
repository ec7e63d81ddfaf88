"""The OpenAI-compatible door (`/v1/models`, `/v1/chat/completions`) and the user's key page.

The door is thin: it authenticates the key, translates the body with `dataplane.openai_wire`,
and runs the same chat turn as every other door, so allow-lists, both quota windows,
privacy, the cache, guardrails and telemetry apply unchanged. Only a bearer key is accepted
here, never the session cookie, so a cross-site page cannot spend a signed-in user's quota.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from api.door import RunningTurn, database_step
from api.forms import ApiKeyForm
from api.models import ApiKey
from api.selectors import ApiKeyRejectedError, KeyHolder, api_key_authenticate, api_keys_of
from api.services import api_key_create, api_key_revoke, api_key_used
from dataplane.errors import ValidationError
from dataplane.openai_wire import (
    CompletionBuilder,
    CompletionRequest,
    completion_request,
    error_response,
    gateway_error_body,
    sse,
)
from dataplane.requests import parse_json
from gateway_project.gateway import gateway


def _error(status: int, message: str, *, openai_type: str, code: str, param: str | None = None) -> JsonResponse:
    body = gateway_error_body(message=message, openai_type=openai_type, code=code, param=param)
    return JsonResponse(body, status=status)


async def _holder(request: HttpRequest) -> KeyHolder | JsonResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return _error(
            401, "Send your API key as 'Authorization: Bearer <key>'.", openai_type="invalid_request_error",
            code="missing_api_key",
        )
    try:
        return await database_step(api_key_authenticate, secret=secret.strip())
    except ApiKeyRejectedError as rejected:
        return _error(401, rejected.message, openai_type="invalid_request_error", code="invalid_api_key")


@csrf_exempt
@require_http_methods(["GET"])
async def models_list(request: HttpRequest) -> JsonResponse:
    """The caller's allowed models, as the data plane will enforce them (narrowed by the key)."""
    holder = await _holder(request)
    if isinstance(holder, JsonResponse):
        return holder
    policy = await sync_to_async(gateway().policies.get)(holder.sub)
    await database_step(api_key_used, key_id=holder.key_id)
    allowed = policy.models if policy is not None else ()
    models = [m for m in allowed if not holder.model_ids or m.model_id in holder.model_ids]
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"id": m.model_id, "object": "model", "created": 0, "owned_by": m.provider, "name": m.display_name}
                for m in models
            ],
        }
    )


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    accepted = await _accept(request)
    if isinstance(accepted, JsonResponse):
        return accepted
    holder, completion = accepted
    turn = RunningTurn(holder=holder, payload=completion.payload)
    builder = CompletionBuilder(
        model=completion.model, created=int(time.time()), include_usage=completion.include_usage
    )
    events = turn.events()
    try:
        # The first event decides the status: a refusal (quota, model, validation) is an HTTP
        # error, not a stream that starts and then fails.
        first = await anext(events, None)
        unanswered = {"error": {"type": "InternalError", "message": "The turn ended unanswered."}}
        first_chunks = builder.chunks(first or unanswered)
        if builder.error is not None:
            async for _ in events:  # the turn records the key's use before it ends
                pass
            return _pipeline_error(builder.error)
        if completion.stream:
            stream = _stream(turn, events, first_chunks, builder)
            response = StreamingHttpResponse(stream, content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # a proxy must pass chunks on as they come
            return response
        async for event in events:
            builder.chunks(event)
    except BaseException:
        turn.stop()  # the client went away before the answer was handed over (the view was cancelled)
        raise
    if builder.error is not None:
        return _pipeline_error(builder.error)
    return JsonResponse(builder.completion())


async def _accept(request: HttpRequest) -> tuple[KeyHolder, CompletionRequest] | JsonResponse:
    """Who calls and what they ask, or the 401/405/400/403 that says what is wrong."""
    if request.method != "POST":
        return _error(
            405, "Use POST for chat completions.", openai_type="invalid_request_error", code="method_not_allowed"
        )
    holder = await _holder(request)
    if isinstance(holder, JsonResponse):
        return holder
    completion = _completion_of(request, holder)
    if isinstance(completion, JsonResponse):
        return completion
    return holder, completion


def _completion_of(request: HttpRequest, holder: KeyHolder) -> CompletionRequest | JsonResponse:
    """The body as a pipeline request, or the 400/403 that says what is wrong with it."""
    if request.content_type != "application/json":
        return _error(400, "Send the request as application/json.", openai_type="invalid_request_error",
                      code="invalid_request")
    try:
        completion = completion_request(parse_json(request.body))
    except ValueError:  # not JSON (UnicodeDecodeError is one too)
        return _error(400, "The request body is not valid JSON.", openai_type="invalid_request_error",
                      code="invalid_request")
    except ValidationError as error:
        return _error(400, error.message, openai_type="invalid_request_error", code="invalid_request",
                      param=error.details.get("field"))
    if holder.model_ids and completion.model not in holder.model_ids:
        return _error(
            403, f"This API key may not use the model {completion.model}.", openai_type="permission_error",
            code="model_not_allowed_for_key", param="model",
        )
    return completion


def _pipeline_error(error: dict[str, Any]) -> JsonResponse:
    shaped = error_response(error, now=timezone.now())
    response = JsonResponse(shaped.body, status=shaped.status)
    if shaped.retry_after is not None:
        response["Retry-After"] = str(shaped.retry_after)
    return response


async def _stream(
    turn: RunningTurn, events: AsyncIterator[dict[str, Any]], first_chunks: list[dict[str, Any]],
    builder: CompletionBuilder,
) -> AsyncIterator[bytes]:
    finished = False
    try:
        for chunk in first_chunks:
            yield sse(chunk)
        async for event in events:
            for chunk in builder.chunks(event):
                yield sse(chunk)
            if builder.error is not None:
                # Mid-stream failure: OpenAI's clients raise on an `error` event.
                yield sse(error_response(builder.error, now=timezone.now()).body)
        finished = True
        if builder.error is None:
            yield sse("[DONE]")
    finally:
        if not finished:
            turn.stop()  # the client went away (the generator was closed): stop and settle


# --- the user's own keys ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def keys_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # login_required
    issued = None
    if request.method == "POST":
        form = ApiKeyForm(request.POST, user=user)
        if form.is_valid():
            issued = api_key_create(
                user=user, name=form.cleaned_data["name"], expires_at=form.cleaned_data["expires_at"],
                models=list(form.cleaned_data["models"]),
            )
            form = ApiKeyForm(user=user)
    else:
        form = ApiKeyForm(user=user)
    return render(
        request,
        "api/keys.html",
        {
            "form": form,
            "issued": issued,
            "keys": api_keys_of(user=user),
            "base_url": request.build_absolute_uri("/v1"),
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id, user=request.user)  # someone else's key is a 404
    api_key_revoke(key=key)
    messages.success(request, _("The key %(prefix)s… is revoked.") % {"prefix": key.prefix})
    return redirect("api:keys")
