"""Service tasks and the sign-ups of volunteers to them."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    any_,
    case,
    func,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, column_property, mapped_column
from sqlalchemy.orm.attributes import instance_dict

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import ACTIVE, SLOT_HOLDING, AssignmentMode, SignupStatus, TaskStatus

_active_list = ", ".join(f"'{s.value}'" for s in ACTIVE)
_holding_list = ", ".join(f"'{s.value}'" for s in SLOT_HOLDING)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="RESTRICT"), index=True
    )
    town_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("towns.id"), index=True)
    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(256))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signup_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slots: Mapped[int] = mapped_column(Integer)
    filled_slots: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    required_skills: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), default=list, server_default=text("'{}'")
    )
    min_age: Mapped[int | None] = mapped_column(Integer)
    # Matching: a volunteer's home must be within this distance of the task (a hard constraint), when set.
    match_radius_km: Mapped[float | None] = mapped_column(Float)
    assignment_mode: Mapped[AssignmentMode] = mapped_column(str_enum(AssignmentMode, "assignment_mode"))
    checkin_radius_m: Mapped[int] = mapped_column(Integer)
    checkin_secret: Mapped[str] = mapped_column(String(64))
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"), index=True)
    # Set when an organization asks for matching before the deadline; the batch picks these up too.
    matching_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    matched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The round new applications join. A matching batch closes it (opens the next) before it reads, and decides
    # the closed rounds; every round below decided_round has been decided (see MatchingDecision).
    matching_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    decided_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("slots > 0", name="slots_positive"),
        CheckConstraint("filled_slots BETWEEN 0 AND slots", name="filled_within_slots"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="coordinates"),
        CheckConstraint("min_age IS NULL OR min_age BETWEEN 0 AND 100", name="min_age_range"),
        CheckConstraint("decided_round BETWEEN 0 AND matching_round", name="decided_rounds_closed"),
        CheckConstraint("checkin_radius_m > 0", name="radius_positive"),
        CheckConstraint("match_radius_km IS NULL OR match_radius_km > 0", name="match_radius_positive"),
        Index("ix_tasks_starts_at_id", "starts_at", "id"),
        # The period's tasks for statistics, read from the index alone.
        Index("ix_tasks_starts_at_figures", "starts_at",
              postgresql_include=["status", "organization_id", "slots", "filled_slots"]),
        Index("ix_tasks_lat_lng", "lat", "lng"),
        # Open tasks near a point (the volunteer app's search): a small share of all tasks ever posted.
        Index("ix_tasks_open_lat_lng", "lat", "lng", postgresql_where=text("status = 'OPEN'")),
        Index("ix_tasks_required_skills", "required_skills", postgresql_using="gin"),
        # The target of service_outcomes' foreign key: an outcome holds its task's project, organization and start.
        UniqueConstraint("id", "project_id", "organization_id", "starts_at"),
    )


class Signup(Base):
    __tablename__ = "signups"
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"))
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    # What was written to this row. `status` is what the sign-up is: an application decided by a matching batch
    # stays APPLIED here, and its decision (WAITLISTED or REJECTED) lives in the batch's MatchingDecision.
    recorded_status: Mapped[SignupStatus] = mapped_column("status", str_enum(SignupStatus, "signup_status"))
    # The task's matching round the application joined (MATCHED tasks); a MatchingDecision decides a round.
    matching_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A decision made for this sign-up alone (a promotion from the waitlist): its score and breakdown. A batch's
    # decisions keep theirs in the MatchingDecision of the sign-up's round.
    match_score: Mapped[Decimal | None] = mapped_column(Numeric(8, 3))
    match_explanation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    added_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    applied_at: Mapped[datetime] = created_at()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (
        # One sign-up in play per volunteer and task; cancelled / rejected ones stay as history.
        Index(
            "uq_signups_active_per_task", "task_id", "volunteer_id",
            unique=True, postgresql_where=text(f"status IN ({_active_list})"),
        ),
        Index("ix_signups_task_id_applied_at", "task_id", "applied_at", "id"),
        # Matching reads the slot holders of a few tasks (time clashes) and a volunteer's no-shows.
        Index("ix_signups_task_holding", "task_id", postgresql_where=text(f"status IN ({_holding_list})")),
        Index("ix_signups_no_show", "volunteer_id", postgresql_where=text("status = 'NO_SHOW'")),
        # Applications of a task's round: whether a task has any to close or decide, without reading the others.
        Index("ix_signups_applied_round", "task_id", "matching_round", postgresql_where=text("status = 'APPLIED'")),
        CheckConstraint(
            "checked_out_at IS NULL OR (checked_in_at IS NOT NULL AND checked_out_at >= checked_in_at)",
            name="checkout_after_checkin",
        ),
        CheckConstraint("matching_round >= 0", name="matching_round_not_negative"),
    )

    if TYPE_CHECKING:
        # Loaded with the row (a column property, below): for an application still APPLIED here, the decision
        # of the round it joined.
        decided_in_pool: Mapped[str | None]

    @hybrid_property
    def status(self) -> SignupStatus:
        """What the sign-up is now: the recorded status, or for an application a batch decided without writing
        its row, that batch's decision (WAITLISTED or REJECTED)."""
        # Read from the loaded state, never loaded on access (no I/O in an attribute): a row read from the
        # database carries it, and a sign-up created in this session has no batch decision.
        decided = instance_dict(self).get("decided_in_pool")
        if self.recorded_status is SignupStatus.APPLIED and decided is not None:
            return SignupStatus(decided)
        return self.recorded_status

    @status.inplace.setter
    def _status_setter(self, value: SignupStatus) -> None:
        self.recorded_status = value

    @status.inplace.expression
    @classmethod
    def _status_expression(cls) -> ColumnElement[SignupStatus]:
        return signup_status(cls.__table__)

    @status.inplace.update_expression
    @classmethod
    def _status_update(cls, value: Any) -> list[tuple[Any, Any]]:
        """`update(Signup).values(status=...)` writes the row's status."""
        return [(cls.recorded_status, value)]

    @status.inplace.bulk_dml
    def _status_bulk(cls: Any, mapping: MutableMapping[str, Any], value: Any) -> None:
        """`insert(Signup)` with rows of dicts: `status` is the row's status."""
        mapping["recorded_status"] = value


class MatchingDecision(Base):
    """What one matching batch decided for one round of a task's applications.

    A city-wide batch decides millions of applications; writing each one's row would cost minutes. So the batch
    writes the rows of its winners only (CONFIRMED: they hold slots), and for the round it decided one row here:
    the rejected applications' ids, and every decided application's decision, score and breakdown packed in
    `entries` (fixed-width records sorted by sign-up id: youthlink.domain.matching.decisions). An application
    whose row is still APPLIED and whose round has a decision is WAITLISTED, or REJECTED when listed.
    """

    __tablename__ = "matching_decisions"
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"),
                                               primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Checked at commit: the batch writes its decisions before the run's row, which records how they went.
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("matching_runs.id", deferrable=True, initially="DEFERRED"), index=True
    )
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applications: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    entries: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (
        CheckConstraint("round >= 0", name="round_not_negative"),
        CheckConstraint("applications > 0", name="applications_positive"),
        CheckConstraint("cardinality(rejected) <= applications", name="rejected_among_applications"),
        # youthlink.domain.matching.decisions.ENTRY: 51 bytes an application.
        CheckConstraint("octet_length(entries) = 51 * applications", name="entries_length"),
    )


def decided_in_pool(signups: Any) -> ColumnElement[str | None]:
    """For an application still APPLIED in `signups` (the table, or an alias of it): the decision of its round,
    if a batch decided it (WAITLISTED or REJECTED), else NULL."""
    decision = MatchingDecision.__table__
    # Constants as literals, not parameters: the expression then reads the same wherever a statement repeats
    # it (GROUP BY Signup.status).
    applied, waitlisted, rejected = (literal_column(f"'{s.value}'", String) for s in
                                     (SignupStatus.APPLIED, SignupStatus.WAITLISTED, SignupStatus.REJECTED))
    outcome = (
        select(case((signups.c.id == any_(decision.c.rejected), rejected), else_=waitlisted).label("decision"))
        .where(decision.c.task_id == signups.c.task_id, decision.c.round == signups.c.matching_round)
        .correlate(signups)
        .scalar_subquery()
    )
    found: ColumnElement[str | None] = case((signups.c.status == applied, outcome))
    return found


def signup_status(signups: Any) -> ColumnElement[SignupStatus]:
    """The sign-up's status in SQL (Signup.status): the recorded one, or its round's decision."""
    status: Any = type_coerce(func.coalesce(decided_in_pool(signups), signups.c.status),
                              str_enum(SignupStatus, "signup_status"))
    return status  # type: ignore[no-any-return]


Signup.decided_in_pool = column_property(decided_in_pool(Signup.__table__), expire_on_flush=False)


class TaskInvitation(Base):
    """An organization invites an eligible volunteer to apply (from the matcher's recommendations)."""

    __tablename__ = "task_invitations"
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"))
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (UniqueConstraint("task_id", "volunteer_id"),)


class MatchingRun(Base):
    """One matching batch that decided something: its size, objective, proven bound and timings."""

    __tablename__ = "matching_runs"
    id: Mapped[uuid.UUID] = uuid_pk()
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tasks: Mapped[int] = mapped_column(Integer)
    applications: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer)
    waitlisted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32))
    # True when the decision is proven optimal (lexicographically: slots filled, then total score).
    exact: Mapped[bool] = mapped_column(Boolean)
    filled: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(BigInteger)  # in thousandths of a point
    bound_filled: Mapped[int] = mapped_column(Integer)
    bound_score: Mapped[int] = mapped_column(BigInteger)
    weights: Mapped[dict[str, Any]] = mapped_column(JSONB)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONB)
