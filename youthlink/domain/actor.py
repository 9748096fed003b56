"""Who is asking: the account behind a request or a job, with its role grants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from youthlink.db.models.enums import Role


@dataclass(frozen=True)
class Grant:
    role: Role
    organization_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Actor:
    account_id: uuid.UUID | None = None
    volunteer_id: uuid.UUID | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @property
    def is_authenticated(self) -> bool:
        return self.account_id is not None

    @property
    def is_city_admin(self) -> bool:
        return any(g.role is Role.CITY_ADMIN for g in self.grants)

    @property
    def admin_organization_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(g.organization_id for g in self.grants if g.role is Role.ORG_ADMIN and g.organization_id)

    @property
    def led_team_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(g.team_id for g in self.grants if g.role is Role.TEAM_LEADER and g.team_id)

    def without_team_roles(self) -> Actor:
        """The same person with only their organization-wide roles (team leaders see masked phones)."""
        kept = tuple(g for g in self.grants if g.role is not Role.TEAM_LEADER)
        return Actor(account_id=self.account_id, volunteer_id=self.volunteer_id, grants=kept)

    @property
    def is_staff(self) -> bool:
        """Holds any role beyond being a volunteer."""
        return self.is_city_admin or bool(self.admin_organization_ids) or bool(self.led_team_ids)


ANONYMOUS = Actor()
# Background jobs act as the system: they are trusted and leave `None` as the actor in the audit trail.
SYSTEM = Actor(grants=(Grant(Role.CITY_ADMIN),))
