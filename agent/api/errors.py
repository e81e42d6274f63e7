"""Service errors and the ONE place where every error becomes an HTTP response.

Bad input is always a 4xx whose ``detail`` names the problem; only our own bugs are a 500.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.api.request_id import current_request_id
from artemis_model.errors import (
    ArtemisInputError,
    FrameIndexError,
    InvalidBoxError,
    NotAnArtemisModelError,
    VideoDecodeError,
)

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error with an HTTP status, a stable ``code`` and a message for the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class UnauthorizedError(ServiceError):
    status, code = 401, "unauthorized"


class ForbiddenError(ServiceError):
    status, code = 403, "forbidden"


class NotFoundError(ServiceError):
    status, code = 404, "not_found"


class ConflictError(ServiceError):
    status, code = 409, "conflict"


class ClientClosedError(ServiceError):
    """The client went away before its turn started (nginx's 499; nobody reads the response)."""

    status, code = 499, "client_closed_request"


class PayloadTooLargeError(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedVideoError(ServiceError):
    status, code = 415, "unsupported_video"


class UnprocessableError(ServiceError):
    status, code = 422, "invalid_input"


class BusyError(ServiceError):
    """The model worker's queue is full, or a job waited too long to start."""

    status, code = 503, "busy"


class QuotaExceededError(ServiceError):
    status, code = 507, "disk_quota_exceeded"


DOMAIN_ERRORS: list[tuple[type[Exception], int, str]] = [
    (InvalidBoxError, 422, "invalid_box"),
    (FrameIndexError, 422, "frame_out_of_range"),
    (VideoDecodeError, 422, "video_decode_error"),
    (NotAnArtemisModelError, 422, "not_an_artemis_model"),
    (ArtemisInputError, 422, "invalid_input"),
]
"""Domain errors (raised by the model, tools and agent on bad input) -> status and code, most specific first."""


def _printable(message: str) -> str:
    """``message`` encodable as UTF-8 (a lone surrogate from a client becomes ``\\udxxx``)."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(status: int, code: str, message: str, **extra: object) -> dict:
    """The error document; ``error`` repeats it in the OpenAI shape so OpenAI clients show the message."""
    message = _printable(message)
    return {
        "detail": message,
        "code": code,
        "status": status,
        "request_id": current_request_id(),
        "error": {"message": message, "type": code, "code": status},
        **extra,
    }


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, **extra), status_code=status, headers=headers)


def domain_status(exc: Exception) -> tuple[int, str] | None:
    """(status, code) for a domain or service error, ``None`` for anything else (a bug: 500)."""
    if isinstance(exc, ServiceError):
        return exc.status, exc.code
    for cls, status, code in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            return status, code
    return None


def scrub_paths(message: str, data_dir: Path | None) -> str:
    """``message`` without the server's data directory (absolute or as configured): ``<data>/...``."""
    if data_dir is None:
        return message
    for root in sorted(
        {str(data_dir.resolve()), str(data_dir), str(data_dir.absolute())}, key=len, reverse=True
    ):
        message = message.replace(root, "<data>")
    return message


def _data_dir(request: Request) -> Path | None:
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "data_dir", None)


def _format_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a JSON response: ``{"detail", "code", "status", "request_id"}``."""

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> Response:
        if exc.status == 499:  # the client is gone: an empty body, nobody reads it
            return Response(status_code=499)
        return error_response(exc.status, exc.code, scrub_paths(exc.message, _data_dir(request)), exc.headers)

    @app.exception_handler(ArtemisInputError)
    async def _domain(request: Request, exc: ArtemisInputError) -> JSONResponse:
        status, code = domain_status(exc) or (422, "invalid_input")
        return error_response(status, code, scrub_paths(str(exc), _data_dir(request)))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in e.items() if k in ("loc", "msg", "type")}
            for e in exc.errors()  # the input itself may be binary or huge: not echoed
        ]
        return error_response(422, "invalid_request", _format_validation(exc), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__})")


HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
"""Codes of Starlette's own errors (unknown path, wrong method, body over the limit)."""


class InternalErrorMiddleware:
    """Turns an unhandled exception into a 500 error document *inside* the request-id middleware, so the
    response carries the request id and the connection stays open (Starlette's outermost handler sends its
    500, then re-raises, and the server drops the keep-alive connection). Once a response has started (a
    stream), the error can only be logged and re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            logger.exception("unhandled error")
            response = error_response(500, "internal_error", f"internal error ({type(exc).__name__})")
            await response(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes`` (except on ``exempt`` paths: the streamed video upload, which
    has its own limits). Checks ``Content-Length`` before reading anything and counts chunked bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: frozenset[tuple[str, str]]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    def _too_large(self, size: str) -> StarletteHTTPException:
        return StarletteHTTPException(
            413, f"the request body ({size} bytes) is over the limit of {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope.get("method", ""), scope.get("path", "")) in self.exempt:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_bytes:
            response = error_response(413, "payload_too_large", str(self._too_large(length).detail))
            response.headers["Connection"] = "close"  # the unread body cannot be skipped on this connection
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"more than {self.max_bytes}")
            return message

        await self.app(scope, counting_receive, send)
