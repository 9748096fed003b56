"""Mutations: decode the input, open a unit of work, call one service, map the result or the refusal."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from youthlink.domain import accounts, hours, inputs, signups, tasks
from youthlink.domain.actor import Actor
from youthlink.domain.constraints import as_domain_error
from youthlink.errors import DomainError, Invalid
from youthlink.graphql import types as t
from youthlink.graphql.context import context_of
from youthlink.graphql.ids import decode_id, decode_optional

log = logging.getLogger(__name__)
R = TypeVar("R")
MAX_IDS = 500


def _field_name(loc: tuple[Any, ...]) -> str:
    # The adapters build commands by Python name, so pydantic reports `starts_at`; the client sent `startsAt`.
    return ".".join(to_camel(str(part)) for part in loc if not isinstance(part, int)) or "input"


def validation_errors(exc: ValidationError) -> list[t.UserError]:
    errors = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        code = err["type"] if err["type"].isupper() else "INVALID_INPUT"
        message = err["msg"].removeprefix("Value error, ")
        errors.append(t.UserError(field=ctx.get("field") or _field_name(err["loc"]), message=message, code=code))
    return errors


Action = Callable[[AsyncSession, Actor], Awaitable[R]]


async def perform(info: Info, action: Action[R]) -> tuple[R | None, list[t.UserError]]:
    """One unit of work around one service call. A refusal rolls everything back and becomes UserErrors."""
    ctx = context_of(info)
    try:
        async with ctx.db.unit_of_work() as session:
            result = await action(session, ctx.actor)
        return result, []
    except ValidationError as exc:
        return None, validation_errors(exc)
    except IntegrityError as exc:
        err = as_domain_error(exc)
        return None, [t.UserError(field=err.field, message=err.message, code=err.code)]
    except DomainError as exc:
        if exc.code == "UNAUTHENTICATED":
            raise GraphQLError(exc.message, extensions={"code": "UNAUTHENTICATED"}) from None
        return None, [t.UserError(field=exc.field, message=exc.message, code=exc.code)]


# Inputs

@strawberry.input
class PointInput:
    lat: float
    lng: float


@strawberry.input
class LocationInput:
    address: str
    lat: float
    lng: float


@strawberry.input
class RegisterVolunteerInput:
    name: str
    phone: str
    password: str
    birth_date: date
    town_id: strawberry.ID | None = None
    skills: list[str] = strawberry.field(default_factory=list)
    location: PointInput | None = None
    guardian_name: str | None = None
    guardian_consent: bool = False
    id_card: str | None = strawberry.field(default=None, description="Optional; stored encrypted, shown masked")


@strawberry.input
class LoginInput:
    phone: str
    password: str


@strawberry.input
class CreateTaskInput:
    organization_id: strawberry.ID
    title: str
    starts_at: datetime
    ends_at: datetime
    slots: int
    location: LocationInput
    project_id: strawberry.ID | None = None
    team_id: strawberry.ID | None = None
    town_id: strawberry.ID | None = None
    description: str = ""
    signup_deadline: datetime | None = None
    required_skills: list[str] = strawberry.field(default_factory=list)
    assignment_mode: t.AssignmentMode = t.AssignmentMode.FIRST_COME  # type: ignore[valid-type]
    min_age: int | None = None
    checkin_radius_m: int | None = None
    publish: bool = True


@strawberry.input(description="Only the fields sent are changed; null clears signupDeadline and minAge")
class UpdateTaskInput:
    task_id: strawberry.ID
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    signup_deadline: datetime | None = strawberry.UNSET
    location: LocationInput | None = strawberry.UNSET
    slots: int | None = strawberry.UNSET
    required_skills: list[str] | None = strawberry.UNSET
    min_age: int | None = strawberry.UNSET
    checkin_radius_m: int | None = strawberry.UNSET


@strawberry.input
class CancelTaskInput:
    task_id: strawberry.ID
    reason: str = strawberry.field(description="Told to every volunteer whose sign-up the cancellation ends")


@strawberry.input
class TaskIdInput:
    task_id: strawberry.ID


@strawberry.input
class CancelSignupInput:
    signup_id: strawberry.ID
    reason: str | None = None


@strawberry.input
class CheckInInput:
    signup_id: strawberry.ID
    code: str
    location: PointInput | None = None


@strawberry.input
class CheckOutInput:
    signup_id: strawberry.ID
    location: PointInput | None = None


@strawberry.input
class AddParticipantInput:
    task_id: strawberry.ID
    volunteer_id: strawberry.ID


@strawberry.input
class RecordServiceHoursInput:
    signup_id: strawberry.ID
    started_at: datetime
    ended_at: datetime
    note: str = ""


@strawberry.input
class ApproveServiceRecordsInput:
    ids: list[strawberry.ID]


@strawberry.input
class AdjustServiceRecordInput:
    record_id: strawberry.ID
    hours: float
    reason: str


UPDATABLE = ("title", "description", "starts_at", "ends_at", "signup_deadline", "location", "slots",
             "required_skills", "min_age", "checkin_radius_m")


# Payloads

@strawberry.type
class RegisterVolunteerPayload:
    token: str | None = None
    volunteer: t.Volunteer | None = None
    errors: list[t.UserError]


@strawberry.type
class LoginPayload:
    token: str | None = None
    errors: list[t.UserError]


@strawberry.type
class TaskPayload:
    task: t.Task | None = None
    errors: list[t.UserError]


async def perform_for_task(info: Info, action: Action[Any]) -> TaskPayload:
    """`perform` for a mutation whose service returns the task it changed."""
    task, errors = await perform(info, action)
    return TaskPayload(task=t.Task.from_row(task) if task else None, errors=errors)


@strawberry.type
class SignupPayload:
    signup: t.Signup | None = None
    errors: list[t.UserError]


@strawberry.type
class ServiceRecordPayload:
    record: t.ServiceRecord | None = None
    errors: list[t.UserError]


@strawberry.type
class ServiceRecordsPayload:
    records: list[t.ServiceRecord]
    errors: list[t.UserError]


@strawberry.type
class AdjustmentPayload:
    adjustment: t.Adjustment | None = None
    errors: list[t.UserError]


def _point(value: PointInput | None) -> dict[str, float] | None:
    return {"lat": value.lat, "lng": value.lng} if value is not None else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register as a volunteer; returns a token for the new account")
    async def register_volunteer(self, info: Info, input: RegisterVolunteerInput) -> RegisterVolunteerPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.RegisterVolunteer(
                name=input.name, phone=input.phone, password=input.password, birth_date=input.birth_date,
                town_id=decode_optional(input.town_id, "Town", "townId"), skills=input.skills,
                location=_point(input.location), guardian_name=input.guardian_name,
                guardian_consent=input.guardian_consent, id_card=input.id_card,
            )
            return await accounts.register_volunteer(session, command)

        result, errors = await perform(info, action)
        if result is None:
            return RegisterVolunteerPayload(errors=errors)
        account, volunteer = result
        return RegisterVolunteerPayload(token=accounts.issue_token(account), volunteer=t.Volunteer.from_row(volunteer),
                                        errors=[])

    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            ctx = context_of(info)
            return await accounts.login(session, inputs.Login(phone=input.phone, password=input.password),
                                        ctx.throttle, ctx.client_address)

        account, errors = await perform(info, action)
        return LoginPayload(token=accounts.issue_token(account) if account else None, errors=errors)

    @strawberry.mutation
    async def create_task(self, info: Info, input: CreateTaskInput) -> TaskPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CreateTask(
                organization_id=decode_id(input.organization_id, "Organization", "organizationId"),
                project_id=decode_optional(input.project_id, "Project", "projectId"),
                team_id=decode_optional(input.team_id, "Team", "teamId"),
                town_id=decode_optional(input.town_id, "Town", "townId"),
                title=input.title, description=input.description, starts_at=input.starts_at,
                ends_at=input.ends_at, signup_deadline=input.signup_deadline, slots=input.slots,
                required_skills=input.required_skills, assignment_mode=input.assignment_mode,
                location={"address": input.location.address, "lat": input.location.lat, "lng": input.location.lng},
                min_age=input.min_age, checkin_radius_m=input.checkin_radius_m, publish=input.publish,
            )
            return await tasks.create_task(session, actor, command)

        return await perform_for_task(info, action)

    @strawberry.mutation(description="Change a task; a new time or place is told to its volunteers")
    async def update_task(self, info: Info, input: UpdateTaskInput) -> TaskPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            sent: dict[str, Any] = {name: getattr(input, name) for name in UPDATABLE
                                    if getattr(input, name) is not strawberry.UNSET}
            if isinstance(sent.get("location"), LocationInput):
                location = sent["location"]
                sent["location"] = {"address": location.address, "lat": location.lat, "lng": location.lng}
            command = inputs.UpdateTask(task_id=decode_id(input.task_id, "Task", "taskId"), **sent)
            return await tasks.update_task(session, actor, command)

        return await perform_for_task(info, action)

    @strawberry.mutation(description="Cancel a task: its sign-ups are cancelled and their volunteers told why")
    async def cancel_task(self, info: Info, input: CancelTaskInput) -> TaskPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CancelTask(task_id=decode_id(input.task_id, "Task", "taskId"), reason=input.reason)
            return await tasks.cancel_task(session, actor, command)

        return await perform_for_task(info, action)

    @strawberry.mutation(description="Ask the matcher to decide a MATCHED task's applications now")
    async def request_matching(self, info: Info, input: TaskIdInput) -> TaskPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await signups.request_matching(session, actor, decode_id(input.task_id, "Task", "taskId"))

        return await perform_for_task(info, action)

    @strawberry.mutation
    async def sign_up(self, info: Info, input: TaskIdInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await signups.sign_up(session, actor, decode_id(input.task_id, "Task", "taskId"))

        return _signup_payload(*await perform(info, action))

    @strawberry.mutation
    async def cancel_signup(self, info: Info, input: CancelSignupInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await signups.cancel_signup(
                session, actor, decode_id(input.signup_id, "Signup", "signupId"), input.reason
            )

        return _signup_payload(*await perform(info, action))

    @strawberry.mutation
    async def check_in(self, info: Info, input: CheckInInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CheckIn(signup_id=decode_id(input.signup_id, "Signup", "signupId"), code=input.code,
                                     location=_point(input.location))
            return await signups.check_in(session, actor, command)

        return _signup_payload(*await perform(info, action))

    @strawberry.mutation
    async def check_out(self, info: Info, input: CheckOutInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CheckOut(signup_id=decode_id(input.signup_id, "Signup", "signupId"),
                                      location=_point(input.location))
            return await signups.check_out(session, actor, command)

        return _signup_payload(*await perform(info, action))

    @strawberry.mutation(description="The organization adds a volunteer to a task (补录, or a call-up)")
    async def add_participant(self, info: Info, input: AddParticipantInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await signups.add_participant(
                session, actor, decode_id(input.task_id, "Task", "taskId"),
                decode_id(input.volunteer_id, "Volunteer", "volunteerId"),
            )

        return _signup_payload(*await perform(info, action))

    @strawberry.mutation(description="Hours from attendance taken on paper; they wait for approval")
    async def record_service_hours(self, info: Info, input: RecordServiceHoursInput) -> ServiceRecordPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.RecordServiceHours(
                signup_id=decode_id(input.signup_id, "Signup", "signupId"), started_at=input.started_at,
                ended_at=input.ended_at, note=input.note,
            )
            return await hours.record_paper_hours(session, actor, command)

        record, errors = await perform(info, action)
        return ServiceRecordPayload(record=t.ServiceRecord.from_row(record) if record else None, errors=errors)

    @strawberry.mutation
    async def approve_service_records(self, info: Info, input: ApproveServiceRecordsInput) -> ServiceRecordsPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            if len(input.ids) > MAX_IDS:
                raise Invalid("TOO_MANY_RECORDS", f"一次最多审核 {MAX_IDS} 条", "ids")
            ids = [decode_id(i, "ServiceRecord", "ids") for i in input.ids]
            return await hours.approve_records(session, actor, ids)

        records, errors = await perform(info, action)
        return ServiceRecordsPayload(records=[t.ServiceRecord.from_row(r) for r in records or []], errors=errors)

    @strawberry.mutation(description="A reasoned correction of an approved record; the record stays as it was")
    async def adjust_service_record(self, info: Info, input: AdjustServiceRecordInput) -> AdjustmentPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.AdjustServiceRecord(
                record_id=decode_id(input.record_id, "ServiceRecord", "recordId"),
                hours=Decimal(str(input.hours)), reason=input.reason,
            )
            return await hours.adjust_record(session, actor, command)

        adjustment, errors = await perform(info, action)
        return AdjustmentPayload(adjustment=t.Adjustment.from_row(adjustment) if adjustment else None, errors=errors)


def _signup_payload(signup: Any, errors: list[t.UserError]) -> SignupPayload:
    return SignupPayload(signup=t.Signup.from_row(signup) if signup else None, errors=errors)
