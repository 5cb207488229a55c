"""Auth routes: register, login, refresh, logout; the caller's profile and password, and
finding a user by email."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth import accounts, service
from taskstream.auth.login_guard import LoginGuard
from taskstream.auth.schemas import (
    ChangePasswordRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UpdateMeRequest,
    UserResponse,
    UserSummary,
)
from taskstream.errors import UnauthorizedError
from taskstream.fields import NO_NUL, Email
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.ratelimit import client_ip

EMAIL_QUERY = QueryParameter(
    min_length=3,
    max_length=320,
    pattern=NO_NUL,
    description="The exact address (any case).",
    examples=[Example(value="ada@example.com")],
)


def _profile(registered: service.RegisteredUser) -> UserResponse:
    user = registered.user
    return UserResponse(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        personal_project_id=registered.personal_project_id,
    )


def _guard(state: State) -> LoginGuard | None:
    """The failed-login counter, when limits are on (as for login)."""
    return state.login_guard if state.settings.limits.enabled else None


def _token_response(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        token=pair.access_token,
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/register",
        operation_id="register",
        status_code=HTTP_201_CREATED,
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": "registration"},
        responses=problem_responses(409),
    )
    async def register(
        self,
        *,
        data: JSONBody[RegisterRequest],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
    ) -> UserResponse:
        """Create an account and its personal project."""
        return _profile(
            await service.register_user(db_session, data.name, data.email, data.password, trace_id)
        )

    @post(
        "/login",
        operation_id="login",
        status_code=HTTP_200_OK,
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": "login"},
        responses=problem_responses(),
    )
    async def login(
        self,
        *,
        data: JSONBody[LoginRequest],
        db_session: NamedDependency[AsyncSession],
        state: State,
        request: Request,
    ) -> TokenResponse:
        """Exchange email and password for an access and a refresh token."""
        if not state.settings.limits.enabled:
            return _token_response(
                await service.login(db_session, state.token_codec, data.email, data.password)
            )
        # Only failures count, per account and per (address, account): see login_guard.py.
        guard: LoginGuard = state.login_guard
        address = client_ip(request.scope)
        await guard.check(address, data.email)
        try:
            pair = await service.login(db_session, state.token_codec, data.email, data.password)
        except UnauthorizedError:
            await guard.record_failure(address, data.email)
            raise
        await guard.record_success(address, data.email)
        return _token_response(pair)

    @post(
        "/refresh",
        operation_id="refreshToken",
        status_code=HTTP_200_OK,
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": "login"},
        responses=problem_responses(),
    )
    async def refresh(
        self,
        *,
        data: JSONBody[RefreshRequest],
        db_session: NamedDependency[AsyncSession],
        state: State,
    ) -> TokenResponse:
        """Rotate a refresh token; reusing an old one revokes the whole session family."""
        pair = await service.refresh(db_session, state.token_codec, data.refresh_token)
        return _token_response(pair)

    @post(
        "/logout",
        operation_id="logout",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(),
    )
    async def logout(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[LogoutRequest | None] = None,
    ) -> None:
        """Revoke the given refresh token's session (or all of the caller's sessions)."""
        token = data.refresh_token if data is not None else None
        await service.logout(db_session, current_user.user_id, token)


class UsersController(Controller):
    path = "/users"
    tags = ["users"]

    @get("/me", operation_id="getCurrentUser", responses=problem_responses())
    async def me(
        self, *, current_user: NamedDependency[Principal], db_session: NamedDependency[AsyncSession]
    ) -> UserResponse:
        """The caller's profile and personal project."""
        return _profile(await service.get_me(db_session, current_user.user_id))

    @get("/", operation_id="findUsersByEmail", responses=problem_responses())
    async def find_by_email(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        email: Annotated[Email, EMAIL_QUERY],
    ) -> list[UserSummary]:
        """The user with this exact email (any case) if you share a project (admins: anyone)."""
        found = await accounts.find_by_email(db_session, current_user, email)
        return [UserSummary(id=u.id, name=u.name, email=u.email) for u in found]

    @patch("/me", operation_id="updateCurrentUser", responses=problem_responses())
    async def update_me(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[UpdateMeRequest],
    ) -> UserResponse:
        """Change the caller's display name."""
        return _profile(await accounts.rename_me(db_session, current_user, data.name))

    @post(
        "/me/password",
        operation_id="changePassword",
        status_code=HTTP_200_OK,
        opt={"rate_limit": "login"},
        responses=problem_responses(409),
    )
    async def change_password(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        trace_id: NamedDependency[str],
        state: State,
        request: Request,
        data: JSONBody[ChangePasswordRequest],
    ) -> TokenResponse:
        """Change the password (current one required); ends every other session."""
        pair = await accounts.change_password(
            db_session,
            state.token_codec,
            current_user,
            data.current_password,
            data.new_password,
            guard=_guard(state),
            address=client_ip(request.scope),
            statuses=state.user_status,
            trace_id=trace_id,
        )
        return _token_response(pair)
