"""The history API, `/api/conversations/`: a signed-in user's own conversations as JSON.

Session auth and CSRF as for every other form of the site; a conversation that is not the
caller's answers 404 exactly like one that does not exist. Bodies are JSON, checked by
`chat.history.payloads`; refusals are `{"errors": [{"errorType", "message"}]}`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from chat.history import selectors, serialize, services
from chat.history.payloads import (
    MAX_BODY_BYTES,
    HistoryError,
    bad_request,
    conversation_parse,
    rename_parse,
    turn_parse,
)
from chat.history.retention import retention_for
from chat.models import Conversation
from dataplane.requests import parse_json

View = Callable[..., HttpResponse]
MAX_QUERY_CHARS = 200


def _error(error: HistoryError) -> JsonResponse:
    return JsonResponse(error.as_body(), status=error.status)


def _admit(request: HttpRequest, methods: tuple[str, ...]) -> None:
    if not request.user.is_authenticated:
        raise HistoryError(401, "Unauthorized", _("Sign in first."))
    if request.method not in methods:
        raise HistoryError(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            _("This address accepts %(methods)s.") % {"methods": ", ".join(methods)},
        )


def history_endpoint(*methods: str) -> Callable[[View], View]:
    """Signed in, one of `methods`, no caching, and every HistoryError answered as JSON."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                _admit(request, methods)
                response = view(request, *args, **kwargs)
            except HistoryError as error:
                response = _error(error)
                if error.status == HTTPStatus.METHOD_NOT_ALLOWED:
                    response["Allow"] = ", ".join(methods)
            response["Cache-Control"] = "no-store"
            return response

        return wrapper

    return decorate


def _body(request: HttpRequest) -> Any:
    if request.content_type != "application/json":
        raise bad_request(_("Send the body as application/json."))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_large = HistoryError(
        413, "TooLarge", _("The body is too large (at most %(kib)s KiB).") % {"kib": MAX_BODY_BYTES // 1024}
    )
    if declared > MAX_BODY_BYTES:
        raise too_large
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    try:
        return parse_json(raw)
    except ValueError:
        raise bad_request(_("The body is not valid JSON.")) from None


def _owned(request: HttpRequest, conversation_id: str) -> Conversation:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    if conversation is None:
        raise HistoryError(404, "NotFound", _("No such conversation. It may have been deleted or have expired."))
    return conversation


def _positive_int(value: str | None, *, default: int, field: str, maximum: int) -> int:
    if value in (None, ""):
        return default
    if value is None or not value.isdigit() or not 1 <= int(value) <= maximum:
        raise bad_request(_("%(field)s must be a whole number from 1 to %(max)s.") % {"field": field, "max": maximum})
    return int(value)


@history_endpoint("GET", "POST")
def conversations(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        data = conversation_parse(_body(request))
        conversation = services.conversation_create(
            user=request.user, title=data.title, model_id=data.model_id, private=data.private, messages=data.messages
        )
        detail = serialize.conversation_detail(
            conversation, list(selectors.conversation_messages(conversation=conversation))
        )
        return JsonResponse(detail, status=201)
    page_number = _positive_int(request.GET.get("page"), default=1, field="page", maximum=1_000_000)
    size = _positive_int(
        request.GET.get("pageSize"), default=selectors.PAGE_SIZE, field="pageSize", maximum=selectors.MAX_PAGE_SIZE
    )
    query = request.GET.get("q", "")
    if len(query) > MAX_QUERY_CHARS:
        raise bad_request(_("A search is at most %(count)s characters.") % {"count": MAX_QUERY_CHARS})
    page = selectors.conversation_list(user=request.user, query=query, page=page_number, page_size=size)
    return JsonResponse(
        {
            "conversations": [serialize.conversation_summary(c) for c in page.conversations],
            "page": page.number,
            "pageSize": page.size,
            "total": page.total,
            "hasNext": page.has_next,
            "query": query.strip(),
            "retention": retention_for(user=request.user).as_wire(),
        }
    )


@history_endpoint("GET", "PATCH", "DELETE")
def conversation(request: HttpRequest, conversation_id: str) -> HttpResponse:
    owned = _owned(request, conversation_id)
    if request.method == "DELETE":
        services.conversation_delete(conversation=owned)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        owned = services.conversation_rename(conversation=owned, title=rename_parse(_body(request)))
    return JsonResponse(serialize.conversation_detail(owned, list(selectors.conversation_messages(conversation=owned))))


@history_endpoint("POST")
def conversation_turns(request: HttpRequest, conversation_id: str) -> HttpResponse:
    owned = _owned(request, conversation_id)
    messages, private, keep = turn_parse(_body(request))
    stored = services.turn_append(conversation=owned, messages=messages, private=private, keep=keep)
    return JsonResponse(
        {**serialize.conversation_summary(owned), "messages": [serialize.message_wire(m) for m in stored]}, status=201
    )


def _attachment(content: str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@history_endpoint("GET")
def conversation_export(request: HttpRequest, conversation_id: str) -> HttpResponse:
    owned = _owned(request, conversation_id)
    messages = list(selectors.conversation_messages(conversation=owned))
    wanted = request.GET.get("format", "json")
    if wanted in ("md", "markdown"):
        return _attachment(
            serialize.export_markdown(owned, messages),
            filename=serialize.export_filename(owned, "md"),
            content_type="text/markdown; charset=utf-8",
        )
    if wanted != "json":
        raise bad_request(_("format is json or markdown."))
    return _attachment(
        serialize.export_json([serialize.conversation_detail(owned, messages)]),
        filename=serialize.export_filename(owned, "json"),
        content_type="application/json; charset=utf-8",
    )


@history_endpoint("GET")
def conversations_export(request: HttpRequest) -> HttpResponse:
    everything = [
        {**serialize.conversation_summary(conversation), "messages": [serialize.message_row_wire(row) for row in rows]}
        for conversation, rows in selectors.conversations_export_all(user=request.user)
    ]
    return _attachment(
        serialize.export_json(everything, indent=None),
        filename="conversations.json",
        content_type="application/json; charset=utf-8",
    )
