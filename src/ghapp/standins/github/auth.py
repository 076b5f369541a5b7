"""Credentials as GitHub checks them. :class:`Credentials` holds the app's public key and
the installation tokens issued so far: it verifies app JWTs (RS256, ``iss`` the app id or
client id, at most ten minutes between ``iat`` and ``exp``, ``iat`` at most 60 s ahead),
issues hour-long ``ghs_`` tokens with the app's permissions, and tells what a request's
``Authorization`` header is worth. :func:`authorise` then holds that against what a route
wants (the app JWT, an installation token, or nothing), with GitHub's wording when refused.
:func:`app_key` makes or loads the app's key pair.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ghapp.standins.github._utils import NOT_ACCESSIBLE, TOKEN_PERMISSIONS, Auth, GitHubError, iso

JWT_MAX_LIFETIME = 600  # seconds between iat and exp that GitHub accepts
CLOCK_SKEW = 60  # seconds an iat may lie in the future
TOKEN_LIFETIME = 3600

JWT_UNDECODABLE = "A JSON web token could not be decoded"
_JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time "
    "at which the assertion expires"
)
_JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
_JWT_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)


def app_key(private_key_pem: str | None) -> tuple[str, Any]:
    """The app's private key (PEM; a fresh PKCS#8 one if None) and its public key."""
    if private_key_pem is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    private_key = serialization.load_pem_private_key(private_key_pem.encode(), None)
    return private_key_pem, private_key.public_key()


@dataclass
class Token:
    installation_id: int
    expires_at: float


class Credentials:
    """The app's JWT key and the installation tokens issued for it."""

    def __init__(self, app_id: int, client_id: str, public_key: Any) -> None:
        self.app_id = app_id
        self.client_id = client_id
        self.public_key = public_key
        self.tokens: dict[str, Token] = {}

    def authenticate(self, header: str | None) -> Auth:
        """Which credentials a request carries, and whether GitHub would accept them.

        ``Bearer`` with a three-part value is a JWT; ``token X`` and other ``Bearer``
        values are looked up as installation tokens.
        """
        if not header:
            return Auth()
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and value.count(".") == 2:
            error = self.verify_jwt(value)
            if error is not None:
                return Auth(error=error, presented=True)
            return Auth(kind="app-jwt", presented=True)
        if scheme in ("bearer", "token"):
            token = self.tokens.get(value)
            if token is None or token.expires_at <= time.time():
                return Auth(error="Bad credentials", presented=True)
            return Auth("installation-token", token.installation_id, presented=True)
        return Auth(error="Bad credentials", presented=True)

    def verify_jwt(self, raw: str) -> str | None:
        """None if GitHub would accept this app JWT, else GitHub's complaint."""
        try:
            claims = jwt.decode(
                raw,
                self.public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                    "require": ["iat", "exp", "iss"],
                },
            )
        except jwt.PyJWTError:
            return JWT_UNDECODABLE
        iat, exp, iss = claims["iat"], claims["exp"], claims["iss"]
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            return _JWT_IAT
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return _JWT_EXPIRED
        now = time.time()
        if str(iss) not in (str(self.app_id), self.client_id):
            return JWT_UNDECODABLE
        if iat > now + CLOCK_SKEW:
            return _JWT_IAT
        if exp <= now:
            return _JWT_EXPIRED
        if exp - iat > JWT_MAX_LIFETIME:
            return _JWT_TOO_LONG
        return None

    def issue_token(self, installation_id: int) -> dict[str, Any]:
        """A new installation token, as ``POST .../access_tokens`` answers it."""
        token = "ghs_" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(36)
        )
        expires = time.time() + TOKEN_LIFETIME
        self.tokens[token] = Token(installation_id, expires)
        return {
            "token": token,
            "expires_at": iso(datetime.fromtimestamp(int(expires), UTC)),
            "permissions": dict(TOKEN_PERMISSIONS),
            "repository_selection": "all",
        }

    def expire_tokens(self) -> None:
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, time.time() - 1)


def authorise(wanted: str, auth: Auth) -> None:
    """App endpoints want the app JWT; everything else an installation token.

    ``wanted`` is a route's ``auth``: "jwt", "token" or "none".
    """
    if wanted == "none":  # e.g. a manifest conversion: the code is the credential
        return
    kind = "app-jwt" if wanted == "jwt" else "installation-token"
    if auth.kind == kind:
        return
    if auth.error is not None:
        raise GitHubError(401, auth.error)
    if not auth.presented:
        raise GitHubError(401, "Requires authentication")
    if wanted == "jwt":  # an installation token where a JWT belongs
        raise GitHubError(401, JWT_UNDECODABLE)
    raise GitHubError(403, NOT_ACCESSIBLE)  # the app JWT where a token belongs
