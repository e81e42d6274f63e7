"""Service errors and the ONE place where every error becomes an HTTP response.

Bad input is always a 4xx whose ``detail`` names the problem; only our own bugs are a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


class NotFoundError(ServiceError):
    status, code = 404, "not_found"


class ConflictError(ServiceError):
    status, code = 409, "conflict"


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


def error_body(status: int, code: str, message: str, **extra: object) -> dict:
    """The error document; ``error`` repeats it in the OpenAI shape so OpenAI clients show the message."""
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


def _format_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a JSON response: ``{"detail", "code", "status", "request_id"}``."""

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(ArtemisInputError)
    async def _domain(request: Request, exc: ArtemisInputError) -> JSONResponse:
        status, code = domain_status(exc) or (422, "invalid_input")
        return error_response(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in e.items() if k in ("loc", "msg", "type")}
            for e in exc.errors()  # the input itself may be binary or huge: not echoed
        ]
        return error_response(422, "invalid_request", _format_validation(exc), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__})")
