"""FastAPI dependencies: the runtime and the optional API key (as ``Annotated`` aliases)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.api.errors import BusyError, UnauthorizedError
from agent.api.runtime import ServiceRuntime
from agent.api.storage import ID_PATTERN

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The service's API key")
_bearer = HTTPBearer(auto_error=False, description="The service's API key as a bearer token")


def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise BusyError("the service is starting: models are not loaded yet", headers={"Retry-After": "5"})
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """401 unless the configured API key comes as ``X-API-Key`` or ``Authorization: Bearer`` (when set)."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    given = api_key or (bearer.credentials if bearer is not None else None)
    if given is None or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise UnauthorizedError(
            "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


VideoId = Annotated[str, Path(pattern=ID_PATTERN, description="A video id (32 hex digits)")]
ConversationId = Annotated[str, Path(pattern=ID_PATTERN, description="A conversation id (32 hex digits)")]
