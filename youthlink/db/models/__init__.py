"""All tables; importing this module registers them on Base.metadata."""

from youthlink.db.models.hours import (
    Adjustment,
    Certificate,
    CorrectionRequest,
    HoursImport,
    OrganizationHoursSettings,
    ServiceRecord,
    StarLevelAward,
)
from youthlink.db.models.imports import VolunteerImport
from youthlink.db.models.notifications import Notification, NotificationDelivery, NotificationPreference
from youthlink.db.models.ops import AuditEntry, OutboxJob
from youthlink.db.models.outcomes import ServiceOutcome, ServiceOutcomeLine
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
from youthlink.db.models.stats import StatsRollup, StatsVolunteers
from youthlink.db.models.tasks import MatchingDecision, Signup, Task

__all__ = [
    "Account",
    "Adjustment",
    "AuditEntry",
    "Certificate",
    "CorrectionRequest",
    "HoursImport",
    "MatchingDecision",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "Organization",
    "OrganizationHoursSettings",
    "OutboxJob",
    "Project",
    "ProjectPartner",
    "ProjectTeam",
    "RoleGrant",
    "ServiceOutcome",
    "ServiceOutcomeLine",
    "ServiceRecord",
    "Signup",
    "StarLevelAward",
    "StatsRollup",
    "StatsVolunteers",
    "Task",
    "Team",
    "TeamMember",
    "Town",
    "Volunteer",
    "VolunteerImport",
]
