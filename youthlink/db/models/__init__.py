"""All tables; importing this module registers them on Base.metadata."""

from youthlink.db.models.hours import Adjustment, ServiceRecord
from youthlink.db.models.ops import AuditEntry, OutboxJob
from youthlink.db.models.people import Account, RoleGrant, Volunteer
from youthlink.db.models.reference import (
    Organization,
    Project,
    ProjectPartner,
    ProjectTeam,
    Team,
    TeamMember,
    Town,
)
from youthlink.db.models.tasks import Signup, Task

__all__ = [
    "Account",
    "Adjustment",
    "AuditEntry",
    "Organization",
    "OutboxJob",
    "Project",
    "ProjectPartner",
    "ProjectTeam",
    "RoleGrant",
    "ServiceRecord",
    "Signup",
    "Task",
    "Team",
    "TeamMember",
    "Town",
    "Volunteer",
]
