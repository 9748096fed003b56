"""Enumerations shared by the models, the domain and the GraphQL layer."""

from __future__ import annotations

import enum


class TownKind(enum.StrEnum):
    TOWN = "TOWN"
    SUBDISTRICT = "SUBDISTRICT"


class OrganizationKind(enum.StrEnum):
    CITY_COMMITTEE = "CITY_COMMITTEE"
    TOWN_COMMITTEE = "TOWN_COMMITTEE"
    AFFILIATED_ORG = "AFFILIATED_ORG"
    YOUTH_HOME = "YOUTH_HOME"
    OTHER = "OTHER"


class TeamRole(enum.StrEnum):
    MEMBER = "MEMBER"
    LEADER = "LEADER"


class ProjectRole(enum.StrEnum):
    OWNER = "OWNER"
    PARTNER = "PARTNER"


class Role(enum.StrEnum):
    VOLUNTEER = "VOLUNTEER"
    TEAM_LEADER = "TEAM_LEADER"
    ORG_ADMIN = "ORG_ADMIN"
    CITY_ADMIN = "CITY_ADMIN"


class AssignmentMode(enum.StrEnum):
    FIRST_COME = "FIRST_COME"
    MATCHED = "MATCHED"


class TaskStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class SignupStatus(enum.StrEnum):
    APPLIED = "APPLIED"
    CONFIRMED = "CONFIRMED"
    WAITLISTED = "WAITLISTED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    CHECKED_IN = "CHECKED_IN"
    COMPLETED = "COMPLETED"
    NO_SHOW = "NO_SHOW"


# Sign-ups that hold one of the task's slots (counted in tasks.filled_slots).
SLOT_HOLDING = (SignupStatus.CONFIRMED, SignupStatus.CHECKED_IN, SignupStatus.COMPLETED)
# Sign-ups that are still "in play": at most one per volunteer and task.
ACTIVE = (*SLOT_HOLDING, SignupStatus.APPLIED, SignupStatus.WAITLISTED)


class RecordStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class RecordSource(enum.StrEnum):
    CHECK_IN = "CHECK_IN"
    PAPER = "PAPER"
    IMPORT = "IMPORT"


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    PARKED = "PARKED"


class OutcomeKind(enum.StrEnum):
    """What a brand project's tasks record as their service outcome (服务成效)."""

    LITTER = "LITTER"  # a beach clean-up (海洋净滩): litter collected, by category and weight
    RIVER_PATROL = "RIVER_PATROL"  # a river patrol (河小二): the stretch patrolled and the problems reported


class LitterCategory(enum.StrEnum):
    PLASTIC = "PLASTIC"
    GLASS = "GLASS"
    METAL = "METAL"
    PAPER = "PAPER"
    FISHING_GEAR = "FISHING_GEAR"
    OTHER = "OTHER"


class ProblemCategory(enum.StrEnum):
    POLLUTION = "POLLUTION"
    ILLEGAL_FISHING = "ILLEGAL_FISHING"
    GARBAGE = "GARBAGE"
    DAMAGED_FACILITIES = "DAMAGED_FACILITIES"
    OTHER = "OTHER"
