"""FastAPI dependencies: the runtime and the caller (who the API key says it is), as ``Annotated`` aliases.

The rule of keys: with ``ARTEMIS_API_KEY`` unset, keys are off: every caller is the one local user (owner
``local``) and sees everything — the single-user local case. With it set, keys are on: that key is the
admin's (sees and manages everything, creates users at ``POST /admin/users``); each user's key (stored as
its SHA-256) sees only that user's videos and conversations; no key, no information.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.api.errors import BusyError, ConflictError, ForbiddenError, UnauthorizedError
from agent.api.runtime import ServiceRuntime
from agent.api.schemas import MAX_FRAME_IDX, MAX_ROW_ID
from agent.api.storage import ID_PATTERN, LOCAL_USER

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your API key")
_bearer = HTTPBearer(auto_error=False, description="Your API key as a bearer token")
ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    """Who calls: ``name`` owns what it creates; ``admin`` sees everything (``scope`` None)."""

    name: str
    admin: bool

    @property
    def scope(self) -> str | None:
        """The owner to filter by: the caller's name, or None (everything) for the admin."""
        return None if self.admin else self.name


def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise BusyError("the service is starting: models are not loaded yet", headers={"Retry-After": "5"})
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def identify(runtime: ServiceRuntime, given: str | None) -> Caller | None:
    """The caller ``given`` (a key) names, or None (no key or an unknown one). Keys off: the local user."""
    admin_key = runtime.settings.api_key
    if admin_key is None:
        return Caller(LOCAL_USER, admin=True)
    if not given:
        return None
    if hmac.compare_digest(given.encode("utf-8"), admin_key.get_secret_value().encode("utf-8")):
        return Caller(ADMIN, admin=True)
    user = runtime.store.user_by_key(given)
    return Caller(user.name, admin=False) if user is not None else None


def given_key(
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> str | None:
    """The key sent as ``X-API-Key`` or ``Authorization: Bearer`` (None when neither)."""
    return api_key or (bearer.credentials if bearer is not None else None)


def require_api_key(runtime: RuntimeDep, key: Annotated[str | None, Depends(given_key)]) -> Caller:
    """The caller; 401 unless a known key comes as ``X-API-Key`` or ``Authorization: Bearer`` (keys on)."""
    caller = identify(runtime, key)
    if caller is None:
        raise UnauthorizedError(
            "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


CallerDep = Annotated[Caller, Depends(require_api_key)]


def require_admin(caller: CallerDep, runtime: RuntimeDep) -> Caller:
    """The admin caller; 409 while keys are off (no users then), 403 for a user's key."""
    if runtime.settings.api_key is None:
        raise ConflictError("API keys are off: set ARTEMIS_API_KEY (the admin key) to have users")
    if not caller.admin:
        raise ForbiddenError(f"only the admin key manages users (you are {caller.name!r})")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


VideoId = Annotated[str, Path(pattern=ID_PATTERN, description="A video id (32 hex digits)")]
MessageId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A message id (from the message event)")]
FrameIdx = Annotated[int, Path(ge=0, le=MAX_FRAME_IDX, description="A frame index (0-based)")]
ConversationId = Annotated[str, Path(pattern=ID_PATTERN, description="A conversation id (32 hex digits)")]
