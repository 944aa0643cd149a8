"""Request guards of the serving app: a body-size limit and an optional API key.

- ``BodyLimit`` (ASGI middleware) answers 413 to a body larger than ``max_bytes``: at once when
  ``Content-Length`` says so, else as soon as the streamed body passes the limit, so an
  oversize or endless request never reaches the JSON parser.
- ``api_key_checker`` returns a FastAPI dependency for the scoring endpoints: with a key
  configured, a request must send it as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``
  (401 otherwise, compared in constant time). ``/health`` stays open for probes.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException, Request

API_KEY_ENV = "BASKETCAST_API_KEY"
API_KEY_HEADER = "x-api-key"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def api_key_from_env() -> str | None:
    """The API key from BASKETCAST_API_KEY (None when unset or empty)."""
    return os.environ.get(API_KEY_ENV) or None


def _too_large(limit: int) -> str:
    return f"request body is larger than {limit} bytes; send fewer ids per request"


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes``."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send, detail: str, status: int = 413) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._reject(send, "Content-Length must be a whole number of bytes", 400)
                return
            if int(declared) > self.max_bytes:
                await self._reject(send, _too_large(self.max_bytes))
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the endpoint's body read: FastAPI answers it as is.
                    raise HTTPException(413, _too_large(self.max_bytes))
            return message

        await self.app(scope, limited, send)


def api_key_checker(expected: str | None) -> Callable[[Request], None]:
    """A dependency that lets a request through only with the configured key (if any)."""
    want = None if expected is None else expected.encode()

    def check(request: Request) -> None:
        if want is None:
            return
        sent = request.headers.get(API_KEY_HEADER)
        if sent is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            sent = token.strip() if scheme.lower() == "bearer" else None
        if not sent:
            raise HTTPException(
                401,
                "missing API key: send it as the X-API-Key header (or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(sent.encode(), want):
            raise HTTPException(401, "wrong API key", headers={"WWW-Authenticate": "Bearer"})

    return check
