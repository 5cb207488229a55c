"""Password reset by email (public) and account administration (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth import accounts, admin
from taskstream.auth.schemas import (
    AdminUser,
    AdminUserPage,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
)
from taskstream.fields import CURSOR_QUERY, NO_NUL, Cursor
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size

EMAIL_PREFIX_QUERY = QueryParameter(
    name="email",
    max_length=320,
    pattern=NO_NUL,
    description="Email prefix (any case).",
    examples=[Example(value="ada@")],
)


class PasswordResetController(Controller):
    path = "/auth/password-reset"
    tags = ["auth"]

    @post(
        "/",
        operation_id="requestPasswordReset",
        status_code=HTTP_202_ACCEPTED,
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": "login"},
        responses=problem_responses(),
    )
    async def request_reset(
        self,
        *,
        data: JSONBody[PasswordResetRequest],
        state: State,
        trace_id: NamedDependency[str],
    ) -> Response[PasswordResetAccepted]:
        """Email a single-use reset link if the address has an account; always 202."""
        # The work runs after the answer is sent: known and unknown addresses look the same.
        work = BackgroundTask(
            accounts.request_password_reset,
            state.session_factory,
            data.email,
            auth=state.settings.auth,
            limits=state.settings.limits,
            guard=state.login_guard,
            trace_id=trace_id,
        )
        return Response(PasswordResetAccepted(), status_code=HTTP_202_ACCEPTED, background=work)

    @post(
        "/confirm",
        operation_id="confirmPasswordReset",
        status_code=HTTP_204_NO_CONTENT,
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": "login"},
        responses=problem_responses(),
    )
    async def confirm(
        self,
        *,
        data: JSONBody[PasswordResetConfirm],
        db_session: NamedDependency[AsyncSession],
        state: State,
        trace_id: NamedDependency[str],
    ) -> None:
        """Set a new password with the emailed token; ends every session of the account."""
        await accounts.confirm_password_reset(
            db_session,
            state.settings.auth,
            data.token,
            data.new_password,
            statuses=state.user_status,
            trace_id=trace_id,
        )


class AdminUsersController(Controller):
    path = "/admin/users"
    tags = ["admin"]

    @get("/", operation_id="listUsers", responses=problem_responses(403))
    async def list_users(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
        email: Annotated[str | None, EMAIL_PREFIX_QUERY] = None,
    ) -> AdminUserPage:
        """Every account (deactivated ones too), by email; admins only."""
        return await admin.list_users(
            db_session,
            current_user,
            limit=page_size(limit, state.settings.api),
            cursor=cursor,
            email_prefix=email,
        )

    @post(
        "/{user_id:uuid}/deactivate",
        operation_id="deactivateUser",
        status_code=HTTP_200_OK,
        responses=problem_responses(403, 404, 409),
    )
    async def deactivate(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        user_id: FromPath[uuid.UUID],
    ) -> AdminUser:
        """Deactivate an account: no login or refresh; its tokens stop working within 10 s."""
        return await admin.set_active(
            db_session, current_user, user_id, active=False, statuses=state.user_status
        )

    @post(
        "/{user_id:uuid}/reactivate",
        operation_id="reactivateUser",
        status_code=HTTP_200_OK,
        responses=problem_responses(403, 404),
    )
    async def reactivate(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        user_id: FromPath[uuid.UUID],
    ) -> AdminUser:
        """Reactivate an account; the user logs in again (old tokens stay refused)."""
        return await admin.set_active(
            db_session, current_user, user_id, active=True, statuses=state.user_status
        )


CONTROLLERS = [PasswordResetController, AdminUsersController]
