"""Users and their API tokens over HTTP, for administrators: what ``lightbox user`` and ``lightbox token``
do on the command line. Password hashes never leave the archive, and a token is answered once, when made."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.domain.accounts import MIN_PASSWORD_LENGTH, NAME_PATTERN, ApiToken, Role
from lightbox.domain.accounts import User as UserRecord

MAX_PASSWORD_LENGTH = 1024  # bounds the hashing work a request can ask for
MAX_TOKEN_DAYS = 36_500

Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="The user's name")]
Label = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="The token's name")]


def _password(description: str) -> Any:
    return Field(
        None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, description=description
    )


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent no-op


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    role: Role
    disabled: bool = Field(description="A disabled user can neither log in nor use their tokens")
    created_at: datetime


class NewUser(_Request):
    name: str = Field(pattern=NAME_PATTERN, max_length=64, description="Letters, digits and . _ @ -")
    role: Role
    password: str | None = _password(
        f"At least {MIN_PASSWORD_LENGTH} characters; null: an account that uses API tokens only"
    )


class UserChange(_Request):
    role: Role | None = None
    disabled: bool | None = Field(None, description="true: no login, no token accepted (they are kept)")
    password: str | None = _password(f"A new password, at least {MIN_PASSWORD_LENGTH} characters")


class Token(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None = Field(description="null: it does not expire")
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute; null: never used")


class NewToken(_Request):
    label: str = Field(
        pattern=NAME_PATTERN, max_length=64, description="A name for it, unique for the user (ct-scanner-2)"
    )
    days: int | None = Field(None, ge=1, le=MAX_TOKEN_DAYS, description="Days until it expires; null: never")


class CreatedToken(Token):
    token: str = Field(description="The token (Authorization: Bearer); it is not shown again")


def _user(user: UserRecord) -> User:
    return User.model_validate(user)


def _token(record: ApiToken) -> Token:
    return Token.model_validate(record)


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(prefix="/api/users", tags=["users"])
    accounts = archive.accounts

    async def call(fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    @routes.get(
        "", summary="The users, by name", response_model=list[User], responses=schemas.problem_responses()
    )
    async def listing() -> Any:
        return [_user(u) for u in await call(accounts.list_users)]

    @routes.post(
        "",
        summary="Add a user",
        status_code=201,
        response_model=User,
        responses=schemas.problem_responses(400, 409),
    )
    async def add(body: NewUser, request: Request) -> Any:
        actor = request_actor(request, "api")
        return _user(await call(lambda: accounts.add_user(body.name, body.role, body.password, actor)))

    @routes.patch(
        "/{name}",
        summary="Change a user's role, state or password",
        description="Only the fields given change. Administrators cannot disable their own account or give "
        "up their own admin role (409): another administrator can.",
        response_model=User,
        responses=schemas.problem_responses(400, 404, 409),
    )
    async def change(name: Name, body: UserChange, request: Request) -> Any:
        actor = request_actor(request, "api")
        return _user(
            await call(
                lambda: accounts.update_user(
                    name, role=body.role, disabled=body.disabled, password=body.password, source=actor
                )
            )
        )

    @routes.get(
        "/{name}/tokens",
        summary="A user's API tokens (never the tokens themselves)",
        response_model=list[Token],
        responses=schemas.problem_responses(400, 404),
    )
    async def tokens(name: Name) -> Any:
        def run() -> list[ApiToken]:
            accounts.get_user(name)  # NotFound for an unknown user, rather than an empty list
            return accounts.list_tokens(name)

        return [_token(t) for t in await call(run)]

    @routes.post(
        "/{name}/tokens",
        summary="Create an API token for a user; the answer holds the token, this once",
        status_code=201,
        response_model=CreatedToken,
        responses=schemas.problem_responses(400, 404, 409),
    )
    async def create_token(name: Name, body: NewToken, request: Request) -> Any:
        actor = request_actor(request, "api")
        token, record = await call(lambda: accounts.create_token(name, body.label, body.days, actor))
        return CreatedToken(**_token(record).model_dump(), token=token)

    @routes.delete(
        "/{name}/tokens/{label}",
        summary="Revoke an API token: it is refused from now on (its record stays)",
        response_model=Token,
        responses=schemas.problem_responses(400, 404),
    )
    async def revoke_token(name: Name, label: Label, request: Request) -> Any:
        actor = request_actor(request, "api")
        return _token(await call(lambda: accounts.revoke_token(name, label, actor)))

    return routes
