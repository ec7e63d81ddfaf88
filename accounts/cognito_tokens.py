"""A signed-in user's Cognito ID token, kept fresh on the server for the chat page.

allauth stores the access and refresh tokens of a Cognito sign-in (SocialToken, with
`SOCIALACCOUNT_STORE_TOKENS`); the ID token, which AppSync Events wants, is obtained from
Cognito's token endpoint with the refresh token (`grant_type=refresh_token`) and cached until
it comes within `COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS` of expiry. The refresh token never
leaves the server; the page only ever sees the short-lived ID token.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import jwt
import requests
from allauth.socialaccount.models import SocialToken
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

PROVIDER = "amazon_cognito"


class CognitoTokenError(Exception):
    """Why no ID token can be handed out; `error_type` is what the page is told."""

    error_type = "CognitoUnavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoCognitoIdentity(CognitoTokenError):
    error_type = "NoCognitoIdentity"


class CognitoSignInRequired(CognitoTokenError):
    """The refresh token is gone, expired or revoked: only a new sign-in helps."""

    error_type = "CognitoSignInRequired"


class CognitoUnavailable(CognitoTokenError):
    error_type = "CognitoUnavailable"


@dataclass(frozen=True)
class IdToken:
    token: str
    expires_at: float  # epoch seconds, the token's `exp`

    def seconds_left(self) -> float:
        return self.expires_at - time.time()


def user_has_cognito_identity(*, user: Any) -> bool:
    return user.is_authenticated and user.socialaccount_set.filter(provider=PROVIDER).exists()


def id_token_for(*, user: Any) -> IdToken:
    """A Cognito ID token for `user` with more than the refresh margin left."""
    margin = settings.COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS
    cached = cache.get(_cache_key(user))
    if cached is not None:
        token = IdToken(**cached)
        if token.seconds_left() > margin:
            return token
    stored = _stored_token(user)
    token = _refresh(stored)
    # Cached only while it is worth handing out; a short-lived token is not cached at all.
    cache_seconds = int(token.seconds_left() - margin)
    if cache_seconds > 0:
        cache.set(_cache_key(user), {"token": token.token, "expires_at": token.expires_at}, cache_seconds)
    return token


def _cache_key(user: Any) -> str:
    return f"cognito-id-token:{user.pk}"


def _stored_token(user: Any) -> SocialToken:
    stored = (
        SocialToken.objects.filter(account__user=user, account__provider=PROVIDER)
        .order_by("-id")
        .first()
    )
    if stored is None:
        if not user_has_cognito_identity(user=user):
            raise NoCognitoIdentity("This account does not sign in with Amazon Cognito.")
        raise CognitoSignInRequired("Your Cognito sign-in has no refresh token. Sign in again.")
    if not stored.token_secret:
        raise CognitoSignInRequired("Your Cognito sign-in has no refresh token. Sign in again.")
    return stored


def _refresh(stored: SocialToken) -> IdToken:
    client_id, secret = settings.COGNITO_CLIENT_ID, settings.COGNITO_CLIENT_SECRET
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if secret:
        # Cognito wants a confidential client's credentials in HTTP Basic auth.
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
    form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": stored.token_secret}
    try:
        response = requests.post(
            f"{settings.COGNITO_DOMAIN.rstrip('/')}/oauth2/token",
            data=form, headers=headers, timeout=settings.COGNITO_TOKEN_TIMEOUT_SECONDS,
        )
    except requests.RequestException:
        raise CognitoUnavailable("Amazon Cognito cannot be reached right now. Try again in a moment.") from None
    if response.status_code in (400, 401):
        # invalid_grant: the refresh token expired or was revoked (sign-out everywhere, admin).
        raise CognitoSignInRequired("Your Cognito sign-in has expired. Sign in again.")
    if response.status_code != HTTPStatus.OK:
        raise CognitoUnavailable("Amazon Cognito did not issue a token. Try again in a moment.")
    try:
        answer = response.json()
        id_token = answer["id_token"]
        # The token comes straight from the token endpoint over TLS, so its `exp` is read
        # without verifying the signature (OIDC Core 3.1.3.7); AppSync verifies it on use.
        expires_at = float(jwt.decode(id_token, options={"verify_signature": False})["exp"])
    except (ValueError, KeyError, TypeError, jwt.PyJWTError):
        raise CognitoUnavailable("Amazon Cognito answered with something that is not a token.") from None
    _keep_access_token(stored, answer)
    return IdToken(token=id_token, expires_at=expires_at)


def _keep_access_token(stored: SocialToken, answer: dict[str, Any]) -> None:
    stored.token = answer.get("access_token") or stored.token
    if answer.get("refresh_token"):  # only when the pool rotates refresh tokens
        stored.token_secret = answer["refresh_token"]
    if answer.get("expires_in"):
        stored.expires_at = timezone.now() + timedelta(seconds=int(answer["expires_in"]))
    stored.save(update_fields=["token", "token_secret", "expires_at"])
