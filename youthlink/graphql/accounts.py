"""Account mutations beyond register/login: logout (token revocation), ID card, guardian consent."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from youthlink.domain import accounts
from youthlink.domain.actor import Actor
from youthlink.graphql import types as t
from youthlink.graphql.mutations import perform


@strawberry.type
class LogoutPayload:
    ok: bool
    errors: list[t.UserError]


@strawberry.input
class SetIdCardInput:
    id_card: str


@strawberry.input
class RecordGuardianConsentInput:
    guardian_name: str


@strawberry.type
class VolunteerPayload:
    volunteer: t.Volunteer | None = None
    errors: list[t.UserError]


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Sign out everywhere: every token of this account stops working")
    async def logout(self, info: Info) -> LogoutPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await accounts.logout(session, actor)

        account, errors = await perform(info, action)
        return LogoutPayload(ok=account is not None, errors=errors)

    @strawberry.mutation(description="Record your own ID-card number (stored encrypted, shown masked to others)")
    async def set_id_card(self, info: Info, input: SetIdCardInput) -> VolunteerPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await accounts.set_id_card(session, actor, input.id_card)

        volunteer, errors = await perform(info, action)
        return VolunteerPayload(volunteer=t.Volunteer.from_row(volunteer) if volunteer else None, errors=errors)

    @strawberry.mutation(description="A minor records their guardian's consent (required before signing up)")
    async def record_guardian_consent(self, info: Info, input: RecordGuardianConsentInput) -> VolunteerPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await accounts.record_guardian_consent(session, actor, input.guardian_name)

        volunteer, errors = await perform(info, action)
        return VolunteerPayload(volunteer=t.Volunteer.from_row(volunteer) if volunteer else None, errors=errors)
