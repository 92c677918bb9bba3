"""The app's guard: login rate limits, session expiry, same-origin checks and no uploads.

:class:`Guard` is ASGI middleware put in front of the Gradio app (``launch(app_kwargs=...)``):

- a failed login (per account and per client address) makes the next attempt wait, longer after
  each failure: no wait for the first ``FREE_FAILURES``, then 1, 2, 4, ... seconds up to
  ``MAX_DELAY_S``; attempts inside the wait are refused with 429 and ``Retry-After`` (even with
  the right password), and a success clears the account's and the address's counts;
- a session lives ``session_seconds`` and dies when the account's password changes;
- a state-changing request (any method but GET/HEAD/OPTIONS) from a browser page of another origin
  (``Origin`` or ``Sec-Fetch-Site`` say so) is refused with 403, the login included;
- uploads are refused (the app has no file input).

Gradio keeps sessions as ``app.tokens`` (token -> user) and the token in an ``access-token-*``
cookie; those two private details are used here and nowhere else.
"""

from __future__ import annotations

import json
import threading
import time
from http.cookies import SimpleCookie
from typing import Callable
from urllib.parse import urlsplit

from starlette.requests import Request

from preference_ui.store import Store

FREE_FAILURES = 3
MAX_DELAY_S = 300.0
ADDRESS_FREE_FAILURES = 10  # several annotators may share one address (an office, a NAT)
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
TOKEN_COOKIE = "access-token-"  # prefix of Gradio's session cookies (secure and "unsecure" variants)


class LoginThrottle:
    """Failed-login counts per key (an account or an address) and the wait they impose."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures, time of the last)
        self._lock = threading.Lock()

    @staticmethod
    def delay(failures: int, free: int) -> float:
        """Seconds to wait after ``failures`` failures: none for the first ``free``, then doubling."""
        return 0.0 if failures < free else min(MAX_DELAY_S, 2.0 ** (failures - free))

    def wait(self, key: str, free: int) -> float:
        """Seconds left before ``key`` may try again (0: now)."""
        with self._lock:
            failures, last = self._failures.get(key, (0, 0.0))
        return max(0.0, last + self.delay(failures, free) - self.clock())

    def failed(self, key: str) -> None:
        """Count a failure."""
        with self._lock:
            failures, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (failures + 1, self.clock())

    def succeeded(self, key: str) -> None:
        """Forget the key's failures."""
        with self._lock:
            self._failures.pop(key, None)


class Guard:
    """ASGI middleware enforcing the rules in the module docstring for one store."""

    def __init__(self, app, store: Store, session_seconds: float = SESSION_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.store = store
        self.session_seconds = session_seconds
        self.clock = clock
        self.throttle = LoginThrottle(clock)
        self._sessions: dict[str, tuple[str, float, str]] = {}  # token -> (user, issued, credential stamp)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"].rstrip("/")
        if method not in SAFE_METHODS and _cross_origin(headers):
            return await _refuse(send, 403, "cross-origin request refused: use the app's own page")
        if path.endswith("/gradio_api/upload") or path.endswith("/upload"):
            return await _refuse(send, 403, "uploads are off: this app takes no files")
        self._expire(scope, headers)
        if method == "POST" and path.endswith("/login"):
            return await self._login(scope, receive, send)
        return await self.app(scope, receive, send)

    def _expire(self, scope, headers: dict[str, str]) -> None:
        """Drop the request's session from Gradio when it is too old or its password changed."""
        tokens = getattr(scope.get("app"), "tokens", None)
        if not tokens:
            return
        for token in _session_tokens(headers):
            user = tokens.get(token)
            if user is None:
                continue
            known = self._sessions.get(token)
            if known is None:  # a session this guard did not see issued is not trusted
                tokens.pop(token, None)
                continue
            _, issued, stamp = known
            if self.clock() - issued > self.session_seconds or self.store.credential_stamp(user) != stamp:
                tokens.pop(token, None)
                self._sessions.pop(token, None)

    async def _login(self, scope, receive, send):
        body = await _read_body(receive)
        form = await Request(scope, _replay(body)).form()  # urlencoded (API clients) or multipart (the page)
        user = str(form.get("username") or "").strip()
        address = (scope.get("client") or ("unknown", 0))[0]
        keys = ((f"user:{user}", FREE_FAILURES), (f"address:{address}", ADDRESS_FREE_FAILURES))
        wait = max(self.throttle.wait(key, free) for key, free in keys)
        if wait > 0:
            return await _refuse(send, 429, f"too many failed logins: try again in {wait:.0f} s",
                                 [(b"retry-after", str(max(1, round(wait))).encode())])
        started: dict = {}
        cookies: list[str] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
                cookies.extend(v.decode("latin-1") for k, v in message.get("headers", [])
                               if k.lower() == b"set-cookie")
            await send(message)

        await self.app(scope, _replay(body), capture)
        if started.get("status") == 200:
            for key, _ in keys:
                self.throttle.succeeded(key)
            tokens = getattr(scope.get("app"), "tokens", {})
            now = self.clock()  # forget sessions past their lifetime that were never used again
            self._sessions = {t: s for t, s in self._sessions.items() if now - s[1] <= self.session_seconds}
            for token in _session_tokens({"cookie": "; ".join(c.split(";", 1)[0] for c in cookies)}):
                if token in tokens:
                    self._sessions[token] = (tokens[token], self.clock(), self.store.credential_stamp(tokens[token]))
        else:
            for key, _ in keys:
                self.throttle.failed(key)


def _cross_origin(headers: dict[str, str]) -> bool:
    """True when a browser says the request comes from a page of another origin."""
    if headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = headers.get("origin")
    if not origin:
        return False  # not from a browser page (API clients send no Origin)
    return origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def _session_tokens(headers: dict[str, str]) -> list[str]:
    """The values of Gradio's session cookies in a Cookie header."""
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header carries no session
        return []
    return [m.value for name, m in cookie.items() if name.startswith(TOKEN_COOKIE)]


async def _read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _replay(body: bytes):
    """A ``receive`` that hands the already-read body to the app."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return receive


async def _refuse(send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
