"""The console's session and CSRF tokens. Stateless, so any API replica can check them and a
restart logs nobody out.

- With JOBQUEUE_API_TOKEN set, the login page asks for it once; the session cookie then holds
  an HMAC of the token (never the token itself, so a stolen cookie is no bearer token).
- Every browser gets a random nonce cookie; forms carry an HMAC of it as their CSRF token.
  Both cookies are HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from worker.tokens import token_matches

SESSION_COOKIE = "jobqueue_console_session"
NONCE_COOKIE = "jobqueue_console_nonce"
CSRF_FIELD = "csrf_token"
_SESSION_LABEL = b"jobqueue console session v1"
_CSRF_LABEL = b"jobqueue console csrf v1"


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class ConsoleKeys:
    """Derives the session value and CSRF tokens from the API token (or none)."""

    def __init__(self, api_token: str | None) -> None:
        self.token = api_token or None
        secret = (self.token or "").encode("utf-8", "surrogateescape")
        self._session = _mac(secret, _SESSION_LABEL) if self.token else None
        # Without a token the CSRF check is a double-submit of the nonce cookie, which another
        # site can neither read nor set; with one, the token is bound to the secret too.
        self._csrf_key = hashlib.sha256(_CSRF_LABEL + secret).digest()

    @property
    def login_required(self) -> bool:
        return self.token is not None

    def token_ok(self, given: str) -> bool:
        return self.token is not None and token_matches(self.token, given)

    def session_value(self) -> str:
        assert self._session is not None, "no session without JOBQUEUE_API_TOKEN"
        return self._session

    def session_ok(self, cookie: str | None) -> bool:
        if self._session is None:
            return True
        return cookie is not None and token_matches(self._session, cookie)

    def csrf_token(self, nonce: str) -> str:
        return _mac(self._csrf_key, nonce.encode("utf-8", "surrogateescape"))

    def csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given:
            return False
        return token_matches(self.csrf_token(nonce), given)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)
