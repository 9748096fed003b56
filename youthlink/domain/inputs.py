"""Validated commands: every service takes one of these, built by the GraphQL / REST / CLI adapters.

Pydantic does the shape checks (types, lengths, ranges); the services check the rules that need data.
Field names are the client's (camelCase aliases), so errors point at what the client sent.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from youthlink.db.models.enums import (
    AssignmentMode,
    LitterCategory,
    OrganizationKind,
    OutcomeKind,
    ProblemCategory,
)
from youthlink.db.models.outcomes import MAX_ITEMS, MAX_KG, MAX_KM, MAX_PROBLEMS

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
SKILL_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_TASK_SPAN = timedelta(days=7)
COMMON_PASSWORDS = {"password", "12345678", "123456789", "1234567890", "qwertyuiop", "11111111", "88888888",
                    "password1", "iloveyou", "abc12345", "a1234567", "woaini1314"}


def rule_error(code: str, message: str, field: str) -> PydanticCustomError:
    """A validation error with a stable code and the client's field name (read by the adapters)."""
    return PydanticCustomError(code, message, {"field": field})


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("时间必须带时区偏移 (ISO 8601, e.g. +08:00)")
    return value


def _phone(value: str) -> str:
    value = value.strip()
    if not PHONE_RE.match(value):
        raise ValueError("手机号格式不正确 (11 digits, mainland mobile)")
    return value


def _skills(values: list[str]) -> list[str]:
    cleaned = sorted({v.strip().lower() for v in values})
    for skill in cleaned:
        if not SKILL_RE.match(skill):
            raise ValueError(f"技能标识不合法: {skill!r} (lowercase letters, digits, _)")
    return cleaned


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Phone = Annotated[str, AfterValidator(_phone)]
Skills = Annotated[list[str], Field(max_length=20), AfterValidator(_skills)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class Command(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True,
                              frozen=True)


class Point(Command):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class Place(Point):
    address: str = Field(min_length=1, max_length=256)


class RegisterVolunteer(Command):
    name: Name
    phone: Phone
    password: str = Field(max_length=128)
    birth_date: date
    town_id: uuid.UUID | None = None
    skills: Skills = []
    location: Point | None = None
    guardian_name: str | None = Field(default=None, max_length=64)
    guardian_consent: bool = False
    id_card: str | None = Field(default=None, max_length=32)


class Login(Command):
    phone: Phone
    password: str = Field(min_length=1, max_length=128)


def window_problem(starts_at: datetime, ends_at: datetime, signup_deadline: datetime | None
                   ) -> tuple[str, str, str] | None:
    """What is wrong with a task's time window, as (code, message, field); None when nothing is. Creating a
    task checks it here; changing one checks the merged window in `tasks.update_task`."""
    if ends_at <= starts_at:
        return "INVALID_TIME_RANGE", "结束时间必须晚于开始时间", "endsAt"
    if ends_at - starts_at > MAX_TASK_SPAN:
        return "INVALID_TIME_RANGE", "任务时长不能超过 7 天", "endsAt"
    if signup_deadline is not None and signup_deadline > starts_at:
        return "INVALID_DEADLINE", "报名截止时间不能晚于开始时间", "signupDeadline"
    return None


class CreateTask(Command):
    organization_id: uuid.UUID
    project_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    town_id: uuid.UUID | None = None
    title: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=5000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    signup_deadline: AwareDatetime | None = None
    slots: int = Field(gt=0, le=10000)
    required_skills: Skills = []
    assignment_mode: AssignmentMode = AssignmentMode.FIRST_COME
    location: Place
    min_age: int | None = Field(default=None, ge=0, le=100)
    checkin_radius_m: int | None = Field(default=None, gt=0, le=50000)
    publish: bool = True

    @model_validator(mode="after")
    def _window(self) -> CreateTask:
        problem = window_problem(self.starts_at, self.ends_at, self.signup_deadline)
        if problem is not None:
            raise rule_error(*problem)
        return self


# UpdateTask's fields that null clears; null for any other is refused.
CLEARABLE = frozenset({"signup_deadline", "min_age"})


class UpdateTask(Command):
    """A partial change to a task: only the fields the client sent are changed (`model_fields_set`). The
    rules that need the stored task (the merged time window, the filled slots, the task's state) are checked
    by `tasks.update_task`."""

    task_id: uuid.UUID
    title: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=5000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    signup_deadline: AwareDatetime | None = None  # null clears it
    location: Place | None = None
    slots: int | None = Field(default=None, gt=0, le=10000)
    required_skills: Skills | None = None
    min_age: int | None = Field(default=None, ge=0, le=100)  # null clears it
    checkin_radius_m: int | None = Field(default=None, gt=0, le=50000)

    @model_validator(mode="after")
    def _given(self) -> UpdateTask:
        changed = self.changed()
        if not changed:
            raise rule_error("NOTHING_TO_UPDATE", "没有要修改的内容", "input")
        for name in sorted(changed - CLEARABLE):
            if getattr(self, name) is None:
                raise rule_error("INVALID_INPUT", "该项不能为空", to_camel(name))
        return self

    def changed(self) -> set[str]:
        """The task's fields the client sent (the task ID aside)."""
        return set(self.model_fields_set) - {"task_id"}


class CancelTask(Command):
    task_id: uuid.UUID
    # Told to every volunteer whose sign-up the cancellation ends (and kept on the sign-up).
    reason: str = Field(min_length=2, max_length=256)


class CheckIn(Command):
    signup_id: uuid.UUID
    code: str = Field(min_length=4, max_length=12)
    location: Point | None = None


class CheckOut(Command):
    signup_id: uuid.UUID
    location: Point | None = None


class RecordServiceHours(Command):
    signup_id: uuid.UUID
    started_at: AwareDatetime
    ended_at: AwareDatetime
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _window(self) -> RecordServiceHours:
        if self.ended_at <= self.started_at:
            raise rule_error("INVALID_TIME_RANGE", "结束时间必须晚于开始时间", "endedAt")
        return self


class AdjustServiceRecord(Command):
    record_id: uuid.UUID
    hours: Decimal = Field(ge=Decimal("-24"), le=Decimal("24"), decimal_places=1)
    reason: str = Field(min_length=2, max_length=1000)

    @field_validator("hours")
    @classmethod
    def _nonzero(cls, value: Decimal) -> Decimal:
        if value == 0:
            raise ValueError("调整时长不能为 0")
        return value


class StatsPeriod(Command):
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _order(self) -> StatsPeriod:
        if self.to < self.from_:
            raise rule_error("INVALID_PERIOD", "结束日期不能早于开始日期", "to")
        if (self.to - self.from_).days > 366 * 5:
            raise rule_error("INVALID_PERIOD", "统计区间不能超过 5 年", "to")
        return self




class CreateOrganization(Command):
    name: str = Field(min_length=2, max_length=128)
    kind: OrganizationKind
    parent_id: uuid.UUID | None = None
    town_id: uuid.UUID | None = None
    description: str = Field(default="", max_length=2000)


class CreateTeam(Command):
    organization_id: uuid.UUID
    name: str = Field(min_length=2, max_length=128)
    is_commando: bool = False
    active_from: date | None = None
    active_until: date | None = None

    @model_validator(mode="after")
    def _period(self) -> CreateTeam:
        if self.is_commando and (self.active_from is None or self.active_until is None):
            raise rule_error("COMMANDO_PERIOD_REQUIRED", "青年突击队须写明起止日期", "activeUntil")
        if self.active_from and self.active_until and self.active_until < self.active_from:
            raise rule_error("INVALID_PERIOD", "结束日期不能早于开始日期", "activeUntil")
        return self


class CreateProject(Command):
    owner_organization_id: uuid.UUID
    name: str = Field(min_length=2, max_length=128)
    description: str = Field(default="", max_length=5000)
    outcome_kind: OutcomeKind | None = None


class LitterLine(Command):
    category: LitterCategory
    kg: Decimal = Field(gt=0, le=MAX_KG, decimal_places=2)
    items: int | None = Field(default=None, ge=1, le=MAX_ITEMS)


class ProblemLine(Command):
    category: ProblemCategory
    count: int = Field(ge=1, le=MAX_PROBLEMS)


class RiverPatrol(Command):
    km: Decimal = Field(gt=0, le=MAX_KM, decimal_places=2)
    problems_reported: int = Field(ge=0, le=MAX_PROBLEMS)
    problems: list[ProblemLine] = Field(default=[], max_length=len(ProblemCategory))

    @model_validator(mode="after")
    def _problems(self) -> RiverPatrol:
        if len({p.category for p in self.problems}) != len(self.problems):
            raise rule_error("DUPLICATE_CATEGORY", "每个问题类别只能填写一次", "patrol.problems")
        if sum(p.count for p in self.problems) > self.problems_reported:
            raise rule_error("PROBLEMS_EXCEED_TOTAL", "分类问题数之和不能超过上报问题总数", "patrol.problems")
        return self


class RecordOutcome(Command):
    """A task's service outcome: litter by category (a beach clean-up) or a river patrol; exactly one."""

    task_id: uuid.UUID
    litter: list[LitterLine] | None = Field(default=None, max_length=len(LitterCategory))
    patrol: RiverPatrol | None = None
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> RecordOutcome:
        if (self.litter is None) == (self.patrol is None):
            raise rule_error("ONE_OUTCOME_KIND", "请填写垃圾清理或巡河其中一项", "litter")
        if self.litter is not None:
            if not self.litter:
                raise rule_error("NO_LITTER", "请至少填写一类垃圾", "litter")
            if len({line.category for line in self.litter}) != len(self.litter):
                raise rule_error("DUPLICATE_CATEGORY", "每个垃圾类别只能填写一次", "litter")
        return self

    @property
    def kind(self) -> OutcomeKind:
        return OutcomeKind.LITTER if self.litter is not None else OutcomeKind.RIVER_PATROL
