"""An AppSync Events emulator: the chat API as deployed, on 127.0.0.1, for end-to-end tests.

It speaks AppSync Events' own protocol to real clients:

- WebSocket `/event/realtime` (subprotocols `aws-appsync-event-ws` and `header-<base64url JSON
  of {"Authorization", "host"}>`): `connection_init` → `connection_ack`, `ka`, `subscribe` /
  `unsubscribe` / `publish` with their `authorization` in every frame, `data` frames, and
  `*_error` frames with AppSync's `errorType` names.
- HTTP `POST /event` (the Lambda publishes its answers here, SigV4 signed) on its own port, as
  AppSync has its own HTTP domain.

Auth is checked for real: Cognito user-pool JWTs from `CognitoIssuer` (RS256 signature against
its JWKS, `iss`, `token_use`, `exp`, client id) and IAM SigV4 (the signature recomputed with
botocore's signer from the known secret; then `authorize_iam(principal, action, resource_arn)`
decides, allow-by-signature unless another evaluator is injected). Each namespace allows the
auth modes the template gives it, and runs its handlers as the template wires them: a direct
Lambda onPublish invoked asynchronously (EVENT) or synchronously, an onSubscribe whose
`{"error": ...}` answer becomes a `subscribe_error`.

Choices where AppSync's behaviour is not pinned down here: a connection whose `header-`
subprotocol fails auth is refused with HTTP 401 at the handshake; a connection opened with a
Cognito token is closed (1008, "Token has expired.") when that token expires, the strict
reading of AppSync's per-connection auth, so clients must reconnect with a fresh token; WebSocket frames are
authorised with Cognito tokens only (SigV4-signed frames are not emulated: the chat handler
publishes over HTTP); a failing onSubscribe handler refuses the subscription.

Lambda is emulated as much as the handlers can tell: the exact AppSync event, a context with
`get_remaining_time_in_millis`, one handler module per execution environment (a module copy,
so concurrent invocations never share a Powertools resolver's state), invocation records with
errors and timeouts, and a list standing in for the asynchronous on-failure destination.
It cannot kill a handler at its timeout (a thread cannot be stopped); it records the overrun.

Start it with the `chat_api` fixture (below), or directly:
`AppSyncEventsEmulator(cognito=CognitoIssuer(), iam_principals={key id: IamPrincipal(secret,
role arn)}, namespaces=namespaces_from_template(template) or chat_namespaces(),
authorize_iam=<(principal, action, resource_arn) -> bool>).start()`, then `.stop()`.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.typing import Subprotocol

from dataplane.channels import MAX_EVENT_BYTES, MAX_EVENTS_PER_PUBLISH

SUBPROTOCOL = Subprotocol("aws-appsync-event-ws")
USER_POOL = "AMAZON_COGNITO_USER_POOLS"
IAM = "AWS_IAM"
CONNECTION_TIMEOUT_MS = 300_000
ACCOUNT = "123456789012"

BAD_REQUEST = "BadRequestException"
UNAUTHORIZED = "UnauthorizedException"
UNSUPPORTED = "UnsupportedOperation"

# The chat handler's own timeout in the stack (deploy/gateway_infra/functions.py).
CHAT_TIMEOUT_SECONDS = 300.0


class AppSyncError(Exception):
    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type, self.message, self.status = error_type, message, status

    def errors(self) -> list[dict[str, str]]:
        return [{"errorType": self.error_type, "message": self.message}]


# --- configuration, as the template wires it ----------------------------------------------


@dataclass(frozen=True)
class LambdaHandler:
    """A direct Lambda integration: which handler runs and how AppSync invokes it."""

    handler: str  # module.function, as in the function's `Handler`
    invoke_type: str  # "EVENT" | "REQUEST_RESPONSE"
    function_name: str
    timeout_seconds: float = CHAT_TIMEOUT_SECONDS


# Given a function's name, a context manager under which its AWS calls are made as its role
# (the AWS twin's `acting_as`); None runs handlers with no identity checks.
RunAs = Callable[[str], AbstractContextManager[Any]] | None


@dataclass(frozen=True)
class Namespace:
    name: str
    publish_auth: tuple[str, ...]
    subscribe_auth: tuple[str, ...]
    on_publish: LambdaHandler | None = None
    on_subscribe: LambdaHandler | None = None


def chat_namespaces() -> tuple[Namespace, ...]:
    """What `deploy/gateway_infra/events_api.py` configures (`namespaces_from_template` reads
    the same from a synthesized template; a test keeps the two equal)."""
    chat = LambdaHandler("dataplane.handlers.appsync_chat.handler", "EVENT", "ChatHandler", CHAT_TIMEOUT_SECONDS)
    authorizer = LambdaHandler(
        "dataplane.handlers.appsync_subscribe.handler", "REQUEST_RESPONSE", "SubscribeAuthorizer", 5.0
    )
    return (
        Namespace(
            "inbound", publish_auth=(USER_POOL,), subscribe_auth=(IAM,), on_publish=chat, on_subscribe=authorizer
        ),
        Namespace("outbound", publish_auth=(IAM,), subscribe_auth=(USER_POOL,), on_subscribe=authorizer),
    )


def namespaces_from_template(template: dict[str, Any]) -> tuple[Namespace, ...]:
    """The channel namespaces of a synthesized template, with their handlers' settings."""
    resources = template["Resources"]
    sources = {
        r["Properties"]["Name"]: r["Properties"]["LambdaConfig"]["LambdaFunctionArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::AppSync::DataSource" and r["Properties"].get("Type") == "AWS_LAMBDA"
    }

    def handler(config: dict[str, Any] | None) -> LambdaHandler | None:
        if not config:
            return None
        function_id = sources[config["Integration"]["DataSourceName"]]
        function = resources[function_id]["Properties"]
        name = "ChatHandler" if "ChatHandler" in function_id else "SubscribeAuthorizer"
        return LambdaHandler(
            function["Handler"], config["Integration"]["LambdaConfig"]["InvokeType"], name, float(function["Timeout"])
        )

    namespaces = []
    for resource in resources.values():
        if resource["Type"] != "AWS::AppSync::ChannelNamespace":
            continue
        props = resource["Properties"]
        handlers = props.get("HandlerConfigs") or {}
        namespaces.append(
            Namespace(
                props["Name"],
                publish_auth=tuple(m["AuthType"] for m in props["PublishAuthModes"]),
                subscribe_auth=tuple(m["AuthType"] for m in props["SubscribeAuthModes"]),
                on_publish=handler(handlers.get("OnPublish")),
                on_subscribe=handler(handlers.get("OnSubscribe")),
            )
        )
    return tuple(sorted(namespaces, key=lambda n: n.name))


# --- auth ---------------------------------------------------------------------------------


class CognitoIssuer:
    """A user pool's token issuer: its own RSA key, a JWKS, and ID/access tokens for users."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        user_pool_id: str = "us-east-1_Emulated",
        client_id: str = "emulatorwebclient",
    ) -> None:
        self.region, self.user_pool_id, self.client_id = region, user_pool_id, client_id
        self.kid = uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def token(
        self, *, sub: str, username: str = "", token_use: str = "id", expires_in: int = 3600, **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "token_use": token_use,
            "iat": now,
            "auth_time": now,
            "exp": now + expires_in,
        }
        if token_use == "id":
            body.update({"aud": self.client_id, "cognito:username": username or sub})
        else:
            body.update({"client_id": self.client_id, "username": username or sub})
        body.update(claims)
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.kid})


@dataclass(frozen=True)
class IamPrincipal:
    secret_access_key: str
    arn: str


IamAuthorizer = Callable[[str, str, str], bool]


def allow_by_signature(principal: str, action: str, resource_arn: str) -> bool:
    return True


@dataclass
class Caller:
    mode: str  # USER_POOL | IAM
    identity: dict[str, Any]  # as AppSync hands it to handlers
    principal: str = ""  # IAM: the principal's ARN


# --- Lambda -------------------------------------------------------------------------------


class LambdaContext:
    """What a handler may ask of Lambda's context object."""

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "emulated"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    event: dict[str, Any]
    request_id: str
    result: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class LambdaFunction:
    """One function: execution environments (each its own copy of the handler module, as
    each Lambda environment imports it once), invocations, and the on-failure destination."""

    _copies = itertools.count()

    def __init__(self, config: LambdaHandler, run_as: RunAs = None) -> None:
        self.config = config
        self.run_as = run_as  # the execution role the invocation's AWS calls are made as
        self.invocations: list[Invocation] = []
        self.failure_destination: list[dict[str, Any]] = []  # what the SQS queue would receive
        self._free: list[Callable] = []
        self._loaded: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def errors(self) -> list[Invocation]:
        """What Lambda's `Errors` metric counts: raised exceptions and timeouts."""
        with self._lock:
            return [i for i in self.invocations if i.done.is_set() and (i.error is not None or i.timed_out)]

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """REQUEST_RESPONSE: run now, in the caller's thread."""
        invocation = self._start(event)
        self._run(invocation)
        return invocation

    def invoke_async(self, event: dict[str, Any]) -> Invocation:
        """EVENT: accepted at once, run in its own thread; no retries (the stack sets 0)."""
        invocation = self._start(event)
        thread = threading.Thread(
            target=self._run, args=(invocation,), name=f"lambda-{self.config.function_name}", daemon=True
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return invocation

    def wait_idle(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [i for i in self.invocations if not i.done.is_set()]
            if not pending:
                return
            assert pending[0].done.wait(max(0.0, deadline - time.monotonic())), (
                f"{self.config.function_name} still running"
            )

    def unload(self) -> None:
        for name in self._loaded:
            sys.modules.pop(name, None)

    def _start(self, event: dict[str, Any]) -> Invocation:
        invocation = Invocation(event=json.loads(json.dumps(event)), request_id=str(uuid.uuid4()))
        with self._lock:
            self.invocations.append(invocation)
        return invocation

    def _run(self, invocation: Invocation) -> None:
        handler = None
        context = LambdaContext(self.config.function_name, self.config.timeout_seconds)
        context.aws_request_id = invocation.request_id
        try:
            handler = self._environment()  # an import error fails the invocation, as in Lambda
            with self.run_as(self.config.function_name) if self.run_as else contextlib.nullcontext():
                invocation.result = handler(invocation.event, context)
        except BaseException as error:  # noqa: BLE001 - Lambda reports whatever escaped
            invocation.error = error
        finally:
            invocation.timed_out = context.get_remaining_time_in_millis() == 0
            if handler is not None:
                with self._lock:
                    self._free.append(handler)
            if self.config.invoke_type == "EVENT" and (invocation.error is not None or invocation.timed_out):
                self.failure_destination.append(
                    {
                        "requestContext": {
                            "requestId": invocation.request_id,
                            "condition": "RetriesExhausted",
                            "approximateInvokeCount": 1,
                        },
                        "requestPayload": invocation.event,
                        "responseContext": {"functionError": "Unhandled"},
                        "responsePayload": {
                            "errorType": type(invocation.error).__name__,
                            "errorMessage": str(invocation.error),
                        },
                    }
                )
            invocation.done.set()

    def _environment(self) -> Callable:
        with self._lock:
            if self._free:
                return self._free.pop()
        module_name, _, attribute = self.config.handler.rpartition(".")
        found = importlib.util.find_spec(module_name)
        assert found is not None, module_name
        copy_name = f"{module_name}__environment{next(self._copies)}"
        spec = importlib.util.spec_from_file_location(copy_name, found.origin)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[copy_name] = module
        spec.loader.exec_module(module)
        with self._lock:
            self._loaded.append(copy_name)
        return getattr(module, attribute)


# --- the API --------------------------------------------------------------------------------


@dataclass
class Subscription:
    connection: Any
    subscription_id: str
    channel: str

    def matches(self, channel: str) -> bool:
        if self.channel.endswith("/*"):
            return channel.startswith(self.channel[:-1])
        return channel == self.channel


class AppSyncEventsEmulator:
    def __init__(
        self,
        *,
        cognito: CognitoIssuer,
        iam_principals: dict[str, IamPrincipal] | None = None,
        namespaces: tuple[Namespace, ...] | None = None,
        authorize_iam: IamAuthorizer = allow_by_signature,
        connection_auth: tuple[str, ...] = (USER_POOL, IAM),
        region: str = "us-east-1",
        api_id: str = "emulatedapi",
        keepalive_seconds: float = 60.0,
        run_as: RunAs = None,
    ) -> None:
        self.cognito = cognito
        self.iam_principals = dict(iam_principals or {})
        self.namespaces = {n.name: n for n in (namespaces or chat_namespaces())}
        self.authorize_iam = authorize_iam
        self.connection_auth = connection_auth
        self.region, self.api_id = region, api_id
        self.keepalive_seconds = keepalive_seconds
        self.functions: dict[str, LambdaFunction] = {}
        for namespace in self.namespaces.values():
            for config in (namespace.on_publish, namespace.on_subscribe):
                if config is not None and config.function_name not in self.functions:
                    self.functions[config.function_name] = LambdaFunction(config, run_as)
        self.delivered: list[tuple[Any, dict[str, Any]]] = []  # (connection, data frame), for tests
        self.expired_connections = 0  # connections closed because their token expired
        self.connected: list[Caller] = []  # who opened each accepted connection, for tests
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._jwks = jwt.PyJWKSet.from_dict(cognito.jwks())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_server: Any = None
        self._http: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> AppSyncEventsEmulator:
        started = threading.Event()
        self._loop = loop = asyncio.new_event_loop()

        def run() -> None:
            from websockets.asyncio.server import serve

            async def listen() -> Any:
                return await serve(
                    self._serve_connection, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL], process_request=self._handshake
                )

            asyncio.set_event_loop(loop)
            self._ws_server = loop.run_until_complete(listen())
            started.set()
            loop.run_forever()

        threading.Thread(target=run, name="appsync-realtime", daemon=True).start()
        assert started.wait(10), "the realtime endpoint did not start"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="appsync-http", daemon=True).start()
        return self

    def stop(self) -> None:
        for function in self.functions.values():
            function.wait_idle()
            function.unload()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._loop is not None:
            async def close() -> None:
                self._ws_server.close()
                await self._ws_server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def http_host(self) -> str:
        assert self._http is not None
        return f"127.0.0.1:{self._http.server_address[1]}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.http_host}/event"

    @property
    def realtime_endpoint(self) -> str:
        port = self._ws_server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/event/realtime"

    def namespace_arn(self, namespace: str) -> str:
        return f"arn:aws:appsync:{self.region}:{ACCOUNT}:apis/{self.api_id}/channelNamespace/{namespace}"

    # -- auth ---------------------------------------------------------------------------------
    def authenticate(
        self, headers: dict[str, str], *, body: bytes = b"", method: str = "POST", url: str = ""
    ) -> Caller:
        """The caller behind a request's (or a frame's) authorization headers."""
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = lowered.get("authorization", "")
        if not authorization:
            raise AppSyncError(UNAUTHORIZED, "Missing authorization.", 401)
        if authorization.startswith("AWS4-HMAC-SHA256 "):
            return self._iam_caller(headers, body=body, method=method, url=url or self.http_endpoint)
        return self._cognito_caller(authorization)

    def _cognito_caller(self, token: str) -> Caller:
        try:
            key = self._jwks[jwt.get_unverified_header(token).get("kid", "")]
            claims = jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self.cognito.issuer,
                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except (jwt.PyJWTError, KeyError) as error:
            raise AppSyncError(UNAUTHORIZED, f"Invalid Cognito token: {error}", 401) from None
        client = claims.get("aud") if claims["token_use"] == "id" else claims.get("client_id")
        if claims["token_use"] not in ("id", "access") or client != self.cognito.client_id:
            raise AppSyncError(UNAUTHORIZED, "The token is not for this API's user pool client.", 401)
        identity = {
            "sub": claims["sub"],
            "issuer": claims["iss"],
            "username": claims.get("cognito:username") or claims.get("username") or claims["sub"],
            "claims": claims,
            "sourceIp": ["127.0.0.1"],
            "defaultAuthStrategy": "ALLOW",
            "groups": claims.get("cognito:groups"),
        }
        return Caller(mode=USER_POOL, identity=identity)

    def _iam_caller(self, headers: dict[str, str], *, body: bytes, method: str, url: str) -> Caller:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            fields = dict(
                part.strip().split("=", 1) for part in lowered["authorization"][len("AWS4-HMAC-SHA256 ") :].split(",")
            )
            access_key, date, region, service, _ = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except (KeyError, ValueError):
            raise AppSyncError(UNAUTHORIZED, "Malformed SigV4 authorization.", 401) from None
        principal = self.iam_principals.get(access_key)
        if principal is None or service != "appsync" or region != self.region:
            raise AppSyncError(UNAUTHORIZED, "The security token included in the request is invalid.", 403)
        # Recompute the signature over exactly the headers the client signed.
        request = AWSRequest(
            method=method, url=url, data=body, headers={name: lowered[name] for name in signed if name in lowered}
        )
        request.context["timestamp"] = lowered.get("x-amz-date", "")
        signer = SigV4Auth(
            Credentials(access_key, principal.secret_access_key, lowered.get("x-amz-security-token")), service, region
        )
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not request.context["timestamp"].startswith(date) or expected != fields["Signature"]:
            raise AppSyncError(
                UNAUTHORIZED, "The request signature we calculated does not match the signature you provided.", 403
            )
        identity = {"accountId": ACCOUNT, "userArn": principal.arn, "username": access_key, "sourceIp": ["127.0.0.1"]}
        return Caller(mode=IAM, identity=identity, principal=principal.arn)

    def _authorize(self, caller: Caller, allowed: tuple[str, ...], action: str, namespace: str) -> None:
        if caller.mode not in allowed:
            raise AppSyncError(UNAUTHORIZED, f"Not authorized to {action.split(':')[1]} on namespace {namespace}.", 401)
        if caller.mode == IAM and not self.authorize_iam(caller.principal, action, self.namespace_arn(namespace)):
            raise AppSyncError(UNAUTHORIZED, f"{caller.principal} is not authorized to perform {action}.", 403)

    # -- operations ---------------------------------------------------------------------------
    def _namespace(self, channel: Any) -> Namespace:
        if not isinstance(channel, str) or not channel.startswith("/"):
            raise AppSyncError(BAD_REQUEST, "A channel is a path like /namespace/segment.")
        namespace = self.namespaces.get(channel[1:].split("/")[0])
        if namespace is None:
            raise AppSyncError(BAD_REQUEST, f"No namespace for channel {channel}.")
        return namespace

    def publish(self, caller: Caller, channel: Any, events: Any) -> dict[str, Any]:
        namespace = self._namespace(channel)
        self._authorize(caller, namespace.publish_auth, "appsync:EventPublish", namespace.name)
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_PUBLISH:
            raise AppSyncError(BAD_REQUEST, f"A publish holds 1 to {MAX_EVENTS_PER_PUBLISH} events.")
        accepted, failed = [], []
        for index, event in enumerate(events):
            identifier = str(uuid.uuid4())
            try:
                if not isinstance(event, str) or len(event.encode()) > MAX_EVENT_BYTES:
                    raise ValueError("An event is a JSON string of at most 240 KB.")
                payload = json.loads(event)
            except ValueError as problem:
                failed.append({"identifier": identifier, "index": index, "code": 400, "message": str(problem)})
                continue
            accepted.append({"id": identifier, "index": index, "payload": payload, "text": event})
        broadcast = accepted
        if namespace.on_publish is not None and accepted:
            lambda_event = self._lambda_event(
                caller, channel, "PUBLISH", [{"id": e["id"], "payload": e["payload"]} for e in accepted]
            )
            function = self.functions[namespace.on_publish.function_name]
            if namespace.on_publish.invoke_type == "EVENT":
                # The invocation's result does not change what is broadcast.
                function.invoke_async(lambda_event)
            else:
                broadcast = self._handler_events(function.invoke(lambda_event), accepted)
        for event in broadcast:
            self._broadcast(channel, event["text"])
        return {"successful": [{"identifier": e["id"], "index": e["index"]} for e in accepted], "failed": failed}

    def subscribe(self, caller: Caller, connection: Any, subscription_id: str, channel: Any) -> None:
        namespace = self._namespace(channel)
        self._authorize(caller, namespace.subscribe_auth, "appsync:EventSubscribe", namespace.name)
        if namespace.on_subscribe is not None:
            invocation = self.functions[namespace.on_subscribe.function_name].invoke(
                self._lambda_event(caller, channel, "SUBSCRIBE", None)
            )
            if invocation.error is not None or invocation.timed_out:
                raise AppSyncError(UNAUTHORIZED, "The subscribe handler failed.", 401)
            if isinstance(invocation.result, dict) and invocation.result.get("error"):
                raise AppSyncError(UNAUTHORIZED, str(invocation.result["error"]), 401)
        with self._lock:
            self._subscriptions.append(Subscription(connection, subscription_id, channel))

    def unsubscribe(self, connection: Any, subscription_id: str) -> None:
        with self._lock:
            found = [
                s for s in self._subscriptions if s.connection is connection and s.subscription_id == subscription_id
            ]
            if not found:
                raise AppSyncError(BAD_REQUEST, "Unknown subscription id.")
            self._subscriptions.remove(found[0])

    def _lambda_event(self, caller: Caller, channel: str, operation: str, events: list | None) -> dict[str, Any]:
        segments = channel[1:].split("/")
        return {
            "identity": caller.identity,
            "result": None,
            "request": {"headers": {}, "domainName": None},
            "info": {
                "channel": {"path": channel, "segments": segments},
                "channelNamespace": {"name": segments[0]},
                "operation": operation,
            },
            "error": None,
            "prev": None,
            "stash": {},
            "outErrors": [],
            "events": events,
        }

    @staticmethod
    def _handler_events(invocation: Invocation, accepted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What a synchronous onPublish lets through: its `events`, by id."""
        if invocation.error is not None or not isinstance(invocation.result, dict) or "error" in invocation.result:
            return []
        by_id = {e["id"]: e for e in accepted}
        return [
            {**by_id[item["id"]], "text": json.dumps(item["payload"])}
            for item in invocation.result.get("events") or []
            if item.get("id") in by_id and "payload" in item
        ]

    def _broadcast(self, channel: str, event: str) -> None:
        with self._lock:
            targets = [s for s in self._subscriptions if s.matches(channel)]
        assert self._loop is not None, "the emulator is started"
        sends = []
        for subscription in targets:
            frame = {"type": "data", "id": subscription.subscription_id, "event": event}
            with self._lock:
                self.delivered.append((subscription.connection, frame))
            sends.append(asyncio.run_coroutine_threadsafe(_send(subscription.connection, frame), self._loop))
        for sent in sends:  # in order, and before the publish is answered
            sent.result(10)

    def deliveries_to(self, connection_of: Callable[[Any], bool]) -> list[dict[str, Any]]:
        with self._lock:
            return [frame for connection, frame in self.delivered if connection_of(connection)]

    # -- the realtime endpoint ------------------------------------------------------------------
    def _handshake(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        if request.path.split("?")[0] != "/event/realtime":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        offered = [p.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]
        header = next((p[len("header-"):] for p in offered if p.startswith("header-")), None)
        if SUBPROTOCOL not in offered or header is None:
            return connection.respond(
                HTTPStatus.UNAUTHORIZED, "Subprotocols aws-appsync-event-ws and header-<auth> are required\n"
            )
        try:
            headers = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
            caller = self.authenticate(headers)
            if caller.mode not in self.connection_auth:
                raise AppSyncError(UNAUTHORIZED, "This auth mode may not connect.", 401)
        except (ValueError, AppSyncError) as error:
            return connection.respond(HTTPStatus.UNAUTHORIZED, f"{getattr(error, 'message', error)}\n")
        if caller.mode == USER_POOL:
            connection.token_expires_at = float(caller.identity["claims"]["exp"])
        with self._lock:
            self.connected.append(caller)
        return None

    async def _serve_connection(self, connection: Any) -> None:
        keepalive = asyncio.ensure_future(self._keepalive(connection))
        expiry = asyncio.ensure_future(self._close_at_token_expiry(connection))
        try:
            async for message in connection:
                reply = await asyncio.get_running_loop().run_in_executor(None, self._frame, connection, message)
                if reply is not None:
                    await _send(connection, reply)
        except Exception:  # noqa: BLE001, S110 - a client that went away ends its connection only
            pass
        finally:
            keepalive.cancel()
            expiry.cancel()
            with self._lock:
                self._subscriptions = [s for s in self._subscriptions if s.connection is not connection]

    async def _close_at_token_expiry(self, connection: Any) -> None:
        expires_at = getattr(connection, "token_expires_at", None)
        if expires_at is None:
            return  # IAM connections: each signed request stands alone
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        self.expired_connections += 1
        await connection.close(code=1008, reason="Token has expired.")

    async def _keepalive(self, connection: Any) -> None:
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            await _send(connection, {"type": "ka"})

    def _frame(self, connection: Any, message: Any) -> dict[str, Any] | None:
        """One client frame, answered (runs in a worker thread: handlers block)."""
        try:
            frame = json.loads(message)
            kind = frame["type"]
        except (ValueError, TypeError, KeyError):
            return {"type": "error", "errors": AppSyncError(BAD_REQUEST, "Invalid frame.").errors()}
        frame_id = frame.get("id")
        if kind == "connection_init":
            return {"type": "connection_ack", "connectionTimeoutMs": CONNECTION_TIMEOUT_MS}
        if kind not in ("subscribe", "unsubscribe", "publish"):
            return {
                "type": "error",
                "id": frame_id,
                "errors": AppSyncError(UNSUPPORTED, f"Unknown type {kind}.").errors(),
            }
        try:
            if kind == "unsubscribe":
                self.unsubscribe(connection, frame_id)
                return {"type": "unsubscribe_success", "id": frame_id}
            caller = self.authenticate(frame.get("authorization") or {})
            if kind == "subscribe":
                self.subscribe(caller, connection, frame_id, frame.get("channel"))
                return {"type": "subscribe_success", "id": frame_id}
            result = self.publish(caller, frame.get("channel"), frame.get("events"))
            return {"type": "publish_success", "id": frame_id, **result}
        except AppSyncError as error:
            return {"type": f"{kind}_error", "id": frame_id, "errors": error.errors()}


async def _send(connection: Any, frame: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # a subscriber that left misses the event, as on AppSync
        await connection.send(json.dumps(frame))


def _http_handler(emulator: AppSyncEventsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self.path != "/event":
                    raise AppSyncError(BAD_REQUEST, "POST /event only.", 404)
                caller = emulator.authenticate(dict(self.headers.items()), body=body, url=f"http://{self.headers.get('host')}{self.path}")
                message = json.loads(body or b"{}")
                answer, status = emulator.publish(caller, message.get("channel"), message.get("events")), 200
            except AppSyncError as error:
                answer, status = {"errors": error.errors()}, error.status
            except ValueError:
                answer, status = {"errors": AppSyncError(BAD_REQUEST, "The body is not JSON.").errors()}, 400
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


# --- a client, as the chat page would be one ---------------------------------------------------


def header_subprotocol(headers: dict[str, str]) -> Subprotocol:
    encoded = base64.urlsafe_b64encode(json.dumps(headers).encode()).decode().rstrip("=")
    return Subprotocol(f"header-{encoded}")


class EventsClient:
    """A real WebSocket client of the realtime endpoint, authenticated with a Cognito token."""

    def __init__(self, emulator: AppSyncEventsEmulator, token: str) -> None:
        from websockets.sync.client import connect

        self.authorization = {"Authorization": token, "host": emulator.http_host}
        self.socket = connect(
            emulator.realtime_endpoint,
            subprotocols=[SUBPROTOCOL, header_subprotocol(self.authorization)],
            proxy=None,
            legacy=True,
            open_timeout=10,
        )
        self.frames: list[dict[str, Any]] = []
        self.send({"type": "connection_init"})
        assert self.next_frame(lambda f: f["type"] == "connection_ack")

    def send(self, frame: dict[str, Any]) -> None:
        self.socket.send(json.dumps(frame))

    def next_frame(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        """The first frame (seen before or arriving within `timeout`) that `wanted` accepts."""
        for frame in self.frames:
            if wanted(frame):
                self.frames.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(self.socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if wanted(frame):
                return frame
            self.frames.append(frame)

    def subscribe(self, channel: str) -> dict[str, Any]:
        frame_id = str(uuid.uuid4())
        self.send({"type": "subscribe", "id": frame_id, "channel": channel, "authorization": self.authorization})
        return self.next_frame(lambda f: f.get("id") == frame_id and f["type"].startswith("subscribe_"))

    def publish(self, channel: str, *payloads: Any) -> dict[str, Any]:
        frame_id = str(uuid.uuid4())
        self.send({
            "type": "publish", "id": frame_id, "channel": channel,
            "events": [json.dumps(p) for p in payloads], "authorization": self.authorization,
        })
        return self.next_frame(lambda f: f.get("id") == frame_id and f["type"].startswith("publish_"))

    def events(self, *, until: Callable[[dict[str, Any]], bool], timeout: float = 30) -> Iterator[dict[str, Any]]:
        """The published events arriving in `data` frames, up to and including `until`."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(lambda f: f["type"] == "data", timeout=max(0.0, deadline - time.monotonic()))
            event = json.loads(frame["event"])
            yield event
            if until(event):
                return

    def close(self) -> None:
        self.socket.close()


# --- fixtures ----------------------------------------------------------------------------------
# Import these into a test module (`from tests.aws.appsync import chat_api`): tests/aws/ is
# shared, so they are not in a conftest there.

CHAT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/AIGatewayDataPlane-ChatHandlerRole"


@dataclass
class ChatApi:
    """The deployed chat API, emulated: AppSync, its Lambdas, DynamoDB and Bedrock."""

    emulator: AppSyncEventsEmulator
    cognito: CognitoIssuer
    store: Any  # a DynamoDBStore on the same tables the Lambda uses (for setup, as Django's sync)
    lake_dir: str

    @property
    def chat_handler(self) -> LambdaFunction:
        return self.emulator.functions["ChatHandler"]

    @property
    def authorizer(self) -> LambdaFunction:
        return self.emulator.functions["SubscribeAuthorizer"]

    def client(self, sub: str, username: str = "") -> EventsClient:
        return EventsClient(self.emulator, self.cognito.token(sub=sub, username=username or sub))

    def lake_records(self) -> list[dict[str, Any]]:
        """The local lake's rows, after the handlers' buffered rows are written (as a report would)."""
        from pathlib import Path

        import pyarrow.parquet as pq

        from dataplane.telemetry.sinks import lake_sinks_flush

        lake_sinks_flush()
        return [row for path in Path(self.lake_dir).rglob("*.parquet") for row in pq.read_table(path).to_pylist()]


@pytest.fixture
def chat_api(aws_twin: Any, bedrock_server: Any, tmp_path: Any, monkeypatch: Any) -> Iterator[ChatApi]:
    """The chat API as the synthesized stack wires it, on the AWS twin: the template's tables,
    namespaces, handlers and environment; every AWS call a handler makes is authorised against
    its role's synthesized policies, and so is the chat Lambda's SigV4 publish to AppSync."""
    from tests.aws.twin import CHAT_HANDLER
    from tests.servers.dynamodb import DUMMY_CREDENTIALS

    template = aws_twin.template
    chat_role = aws_twin.principal(CHAT_HANDLER)
    names_by_arn = {principal.arn: name for name, principal in aws_twin.enforcer.principals.items()}
    cognito = CognitoIssuer(region=template.region)
    emulator = AppSyncEventsEmulator(
        cognito=cognito,
        iam_principals={
            DUMMY_CREDENTIALS["aws_access_key_id"]: IamPrincipal(
                DUMMY_CREDENTIALS["aws_secret_access_key"], chat_role.arn
            )
        },
        namespaces=namespaces_from_template(template.body),
        authorize_iam=lambda arn, action, resource: (
            aws_twin.authorize(names_by_arn[arn], action, resource).allowed
            if arn in names_by_arn  # the stack's own roles: their synthesized policies decide
            else allow_by_signature(arn, action, resource)  # a principal from outside the stack
        ),
        region=template.region,
        api_id=aws_twin.channel_namespace_arn("outbound").split(":apis/")[1].split("/")[0],
        run_as=aws_twin.acting_as,
    ).start()
    lake_dir = str(tmp_path / "lake")
    # The chat handler's environment as the template sets it, pointed at the twin and the local
    # Bedrock server; the records also go to a local lake so tests can read them back.
    environment = aws_twin.lambda_environment(bedrock_endpoint_url=bedrock_server.url)
    environment.update({
        "GATEWAY_EVENTS_HTTP_ENDPOINT": emulator.http_endpoint,
        "GATEWAY_TELEMETRY_SINK": f"{environment.get('GATEWAY_TELEMETRY_SINK', 'stdout')},lake",
        "GATEWAY_LAKE_DIR": lake_dir,
    })
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield ChatApi(emulator=emulator, cognito=cognito, store=aws_twin.store(), lake_dir=lake_dir)
    finally:
        emulator.stop()
        bedrock_server.reset()
    assert aws_twin.denials == [], aws_twin.denials
