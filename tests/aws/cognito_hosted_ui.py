"""Cognito's hosted UI and OAuth endpoints on 127.0.0.1, signing with the emulator's keys.

It stands in for `https://<prefix>.auth.<region>.amazoncognito.com` as django-allauth's
`amazon_cognito` provider calls it (`COGNITO_DOMAIN` = this server's URL):

- `GET /oauth2/authorize` (response_type=code, client_id, redirect_uri, state, scope) shows a
  sign-in form; a correct username and password redirect to `redirect_uri?code=…&state=…`.
- `POST /oauth2/token`: `authorization_code` (code once, same redirect_uri) answers ID, access
  and refresh tokens; `refresh_token` answers new ID and access tokens (no new refresh token,
  as Cognito without rotation). The client authenticates with HTTP Basic or with
  `client_id`/`client_secret` in the form. Errors are OAuth's: `invalid_client` (401),
  `invalid_grant` (400), `unsupported_grant_type` (400).
- `GET /oauth2/userInfo` with `Bearer <access token>`: the user's claims (Cognito sends
  `email_verified` as the string "true").
- `GET /.well-known/jwks.json`: the same keys the AppSync emulator verifies against.

Tokens come from a `CognitoIssuer`, so the emulator accepts what this server issues.
"""
from __future__ import annotations

import base64
import html
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from tests.aws.appsync import CognitoIssuer

CODE_LIFETIME_SECONDS = 300


@dataclass(frozen=True)
class PoolUser:
    username: str
    password: str
    sub: str
    email: str


@dataclass
class HostedUiRecord:
    """What happened, for tests to assert on."""

    refresh_grants: int = 0
    issued_id_tokens: list[str] = field(default_factory=list)


class OAuthError(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.status = error, status


class CognitoHostedUi:
    def __init__(
        self,
        *,
        issuer: CognitoIssuer,
        client_secret: str,
        callback_urls: tuple[str, ...] = (),
        users: tuple[PoolUser, ...] = (),
        id_token_seconds: int = 3600,
    ) -> None:
        self.issuer, self.client_secret = issuer, client_secret
        self.callback_urls = list(callback_urls)
        self.users = {user.username: user for user in users}
        self.id_token_seconds = id_token_seconds
        self.record = HostedUiRecord()
        self.revoked: set[str] = set()
        self._codes: dict[str, tuple[PoolUser, str, float]] = {}  # code -> (user, redirect_uri, expiry)
        self._refresh_tokens: dict[str, PoolUser] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CognitoHostedUi:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="cognito-hosted-ui", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def revoke_refresh_tokens(self, username: str) -> None:
        """As `AdminUserGlobalSignOut`: the user's refresh tokens stop working."""
        with self._lock:
            self.revoked.update(t for t, user in self._refresh_tokens.items() if user.username == username)

    # -- the flows --------------------------------------------------------------------------
    def sign_in(self, form: dict[str, str]) -> str:
        """The hosted UI's form post: where the browser goes next."""
        self._check_redirect(form.get("client_id", ""), form.get("redirect_uri", ""))
        user = self.users.get(form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            raise OAuthError("Incorrect username or password.", 401)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (user, form["redirect_uri"], time.time() + CODE_LIFETIME_SECONDS)
        return f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form.get('state', '')})}"

    def token(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        self._authenticate_client(form, authorization)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                user, redirect_uri, expiry = self._codes.pop(form.get("code", ""), (None, "", 0.0))
            if user is None or expiry < time.time() or redirect_uri != form.get("redirect_uri"):
                raise OAuthError("invalid_grant")
            refresh_token = secrets.token_urlsafe(32)
            with self._lock:
                self._refresh_tokens[refresh_token] = user
            return {**self._tokens(user), "refresh_token": refresh_token}
        if grant == "refresh_token":
            with self._lock:
                token = form.get("refresh_token", "")
                user = None if token in self.revoked else self._refresh_tokens.get(token)
                self.record.refresh_grants += 1
            if user is None:
                raise OAuthError("invalid_grant")
            return self._tokens(user)
        raise OAuthError("unsupported_grant_type")

    def user_info(self, authorization: str) -> dict[str, Any]:
        if not authorization.startswith("Bearer "):
            raise OAuthError("invalid_token", 401)
        try:
            key = jwt.PyJWK.from_dict(self.issuer.jwks()["keys"][0]).key
            claims = jwt.decode(authorization[len("Bearer "):], key, algorithms=["RS256"], issuer=self.issuer.issuer)
        except jwt.PyJWTError:
            raise OAuthError("invalid_token", 401) from None
        if claims.get("token_use") != "access":
            raise OAuthError("invalid_token", 401)
        user = next(u for u in self.users.values() if u.sub == claims["sub"])
        return {"sub": user.sub, "email": user.email, "email_verified": "true", "username": user.username}

    def _tokens(self, user: PoolUser) -> dict[str, Any]:
        # Each token has its own `jti`, as Cognito's do: two issued in one second still differ.
        id_token = self.issuer.token(
            sub=user.sub,
            username=user.username,
            expires_in=self.id_token_seconds,
            email=user.email,
            jti=str(uuid.uuid4()),
        )
        with self._lock:
            self.record.issued_id_tokens.append(id_token)
        access_token = self.issuer.token(
            sub=user.sub, username=user.username, token_use="access", expires_in=self.id_token_seconds
        )
        return {
            "id_token": id_token,
            "access_token": access_token,
            "expires_in": self.id_token_seconds,
            "token_type": "Bearer",
        }

    def _check_redirect(self, client_id: str, redirect_uri: str) -> None:
        if client_id != self.issuer.client_id:
            raise OAuthError("invalid_client", 401)
        if redirect_uri not in self.callback_urls:
            raise OAuthError("redirect_mismatch")

    def _authenticate_client(self, form: dict[str, str], authorization: str) -> None:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[len("Basic "):]).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", 401) from None
        if client_id != self.issuer.client_id or not secrets.compare_digest(secret, self.client_secret):
            raise OAuthError("invalid_client", 401)


SIGN_IN_PAGE = """<!doctype html><html><head><title>Sign in</title></head><body>
<form method="post" action="/login">{hidden}
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit" name="signInSubmitButton">Sign in</button>
</form><p class="error">{error}</p></body></html>"""


def _handler(hosted_ui: CognitoHostedUi) -> type[BaseHTTPRequestHandler]:
    import json

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, answer: dict[str, Any]) -> None:
            self._send(status, json.dumps(answer).encode(), "application/json")

        def _sign_in_page(self, params: dict[str, str], error: str = "", status: int = 200) -> None:
            keep = ("client_id", "redirect_uri", "state", "scope", "response_type")
            hidden = "".join(
                f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">' for name in keep
            )
            self._send(
                status,
                SIGN_IN_PAGE.format(hidden=hidden, error=html.escape(error)).encode(),
                "text/html; charset=utf-8",
            )

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/oauth2/authorize":
                try:
                    hosted_ui._check_redirect(params.get("client_id", ""), params.get("redirect_uri", ""))
                except OAuthError as error:
                    self._send(400, f"{error.error}\n".encode(), "text/plain")
                    return
                self._sign_in_page(params)
            elif parts.path == "/oauth2/userInfo":
                try:
                    self._json(200, hosted_ui.user_info(self.headers.get("Authorization", "")))
                except OAuthError as error:
                    self._json(error.status, {"error": error.error})
            elif parts.path == "/.well-known/jwks.json":
                self._json(200, hosted_ui.issuer.jwks())
            else:
                self._send(404, b"Not found\n", "text/plain")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            if self.path == "/login":
                try:
                    location = hosted_ui.sign_in(form)
                except OAuthError as error:
                    self._sign_in_page(form, error.error, status=error.status)
                    return
                self._send(302, b"", "text/plain", {"Location": location})
            elif self.path == "/oauth2/token":
                try:
                    self._json(200, hosted_ui.token(form, self.headers.get("Authorization", "")))
                except OAuthError as error:
                    self._json(error.status, {"error": error.error})
            else:
                self._send(404, b"Not found\n", "text/plain")

    return Handler
