"""Request ids: taken from ``X-Request-ID`` (or generated), put in every log record and response."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("artemis_request_id", default="-")
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = "x-request-id"
access_logger = logging.getLogger("agent.api.access")


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token:
    return _request_id.set(value)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or '-') to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def install_log_filter() -> None:
    """Make ``%(request_id)s`` available to every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


class RequestIdMiddleware:
    """Pure ASGI middleware (streaming- and disconnect-safe): sets the request id and logs one access line.

    A client-supplied ``X-Request-ID`` is kept when it is a short token; otherwise a uuid4 hex is used.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.encode(), b"").decode("latin-1")
        rid = given if _VALID.match(given) else uuid.uuid4().hex
        token = _request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                headers.append((HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_logger.info(
                "%s %s -> %s in %.1f ms",
                scope.get("method"),
                scope.get("path"),
                status["code"],
                1000 * (time.perf_counter() - start),
            )
            _request_id.reset(token)
