"""Users and their API keys (the admin key only): create (the key is shown once), list, delete."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path

from agent.api.deps import AdminDep, RuntimeDep
from agent.api.openapi import errors
from agent.api.schemas import NewUserOut, UserIn, UserListOut, UserOut
from agent.api.storage import USER_NAME_PATTERN

router = APIRouter(prefix="/admin/users", tags=["admin"])
UserName = Annotated[str, Path(pattern=USER_NAME_PATTERN, description="A user's name")]


@router.post(
    "",
    status_code=201,
    response_model=NewUserOut,
    responses=errors(403, 409),
    summary="Create a user and its API key (shown once)",
)
async def create_user(body: UserIn, rt: RuntimeDep, admin: AdminDep) -> NewUserOut:
    key = "ak_" + secrets.token_urlsafe(32)
    rec = rt.store.add_user(body.name, key)
    return NewUserOut(name=rec.name, created_at=rec.created_at, api_key=key)


@router.get("", response_model=UserListOut, responses=errors(403, 409), summary="List users")
async def list_users(rt: RuntimeDep, admin: AdminDep) -> UserListOut:
    return UserListOut(users=[UserOut(name=u.name, created_at=u.created_at) for u in rt.store.list_users()])


@router.delete(
    "/{name}", response_model=UserOut, responses=errors(403, 404, 409), summary="Delete a user's key"
)
async def delete_user(name: UserName, rt: RuntimeDep, admin: AdminDep) -> UserOut:
    rec = rt.store.delete_user(name)
    return UserOut(name=rec.name, created_at=rec.created_at)
