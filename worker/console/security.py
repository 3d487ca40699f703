"""The console's sessions and CSRF tokens.

- With a token set, the login page asks for JOBQUEUE_API_TOKEN (admin: every action) or
  JOBQUEUE_API_READ_TOKEN (read-only: the pages, no action). The session cookie holds a random
  secret; the database holds its SHA-256, the scope and a mark of the token (worker/db/
  console_sessions.py), so a session expires, a logout ends it on every replica, and a new
  token ends every session the old one opened.
- Every browser gets a random nonce cookie; forms carry an HMAC of it as their CSRF token.
  Both cookies are HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from worker.scopes import ADMIN, READ, Tokens, token_matches

SESSION_COOKIE = "jobqueue_console_session"
NONCE_COOKIE = "jobqueue_console_nonce"
CSRF_FIELD = "csrf_token"
MAX_SECRET_CHARS = 128
_MARK_LABEL = b"jobqueue console session v2"
_CSRF_LABEL = b"jobqueue console csrf v1"


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class ConsoleKeys:
    """The tokens a console login accepts, the marks sessions carry, and CSRF tokens."""

    def __init__(
        self, api_token: str | None, read_token: str | None = None, *, closed: bool = False
    ) -> None:
        # the enqueue token opens no console: a producer has nothing to look at there
        self.tokens = Tokens.of(api_token, read_token, None)
        # `closed`: some token guards the API (maybe only the enqueue one), so the console
        # asks for a login even when no console token exists
        self.login_required = closed or self.tokens.enabled
        secret = b"\0".join(_bytes(token) for _, token in self.tokens.by_scope)
        # Without a token the CSRF check is a double-submit of the nonce cookie, which another
        # site can neither read nor set; with one, the token is bound to the secret too.
        self._csrf_key = hashlib.sha256(_CSRF_LABEL + secret).digest()

    @property
    def token(self) -> str | None:
        """The admin token (JOBQUEUE_API_TOKEN), if set."""
        return dict(self.tokens.by_scope).get(ADMIN)

    def scope_of(self, given: str) -> str | None:
        return self.tokens.scope_of(given)

    def token_mark(self, scope: str) -> str:
        token = dict(self.tokens.by_scope).get(scope)
        return _mac(_bytes(token), _MARK_LABEL) if token else ""

    def mark_ok(self, scope: str, mark: str) -> bool:
        return scope in (ADMIN, READ) and bool(mark) and token_matches(self.token_mark(scope), mark)

    def csrf_token(self, nonce: str) -> str:
        return _mac(self._csrf_key, _bytes(nonce))

    def csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given:
            return False
        return token_matches(self.csrf_token(nonce), given)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def session_key(secret: str) -> str:
    """What the database keeps of a session's secret."""
    return hashlib.sha256(_bytes(secret)).hexdigest()
