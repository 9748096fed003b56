"""The matcher's face: explanations, recommendations, invitations, no-shows, a task's distance limit, the runs.

Resolvers stay thin: decode ids, open a session (or `perform`'s unit of work), call one domain function, map.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from youthlink.domain import hours as hours_domain
from youthlink.domain.actor import Actor
from youthlink.domain.matching import recommend, runs, scores, waitlist
from youthlink.errors import DomainError, Invalid
from youthlink.graphql import types as t
from youthlink.graphql.context import context_of
from youthlink.graphql.ids import decode_id, encode_id
from youthlink.graphql.mutations import SignupPayload, TaskPayload, perform, perform_for_task


def top_level(exc: DomainError) -> GraphQLError:
    """Queries refuse with a top-level error whose extensions.code says why."""
    return GraphQLError(exc.message, extensions={"code": exc.code, "field": exc.field})


@strawberry.type(description="One factor of a match score")
class MatchFactor:
    key: str = strawberry.field(description="skills, distance, fairness, reliability, membership or time")
    label: str
    value: float = strawberry.field(description="From 0 to 1")
    weight: float = strawberry.field(description="The most points this factor gives")
    points: float
    detail: str


@strawberry.type(description="Why the matcher scored and decided a sign-up as it did")
class MatchExplanation:
    decision: str = strawberry.field(description="CONFIRMED, WAITLISTED, REJECTED (or RECOMMENDED)")
    reason: str = strawberry.field(description="A stable code, e.g. SELECTED, TASK_FULL, TIME_CONFLICT, TOO_FAR")
    message: str
    score: float | None
    factors: list[MatchFactor]
    run_id: str | None = strawberry.field(description="The matching run that decided it (none for promotions)")

    @classmethod
    def from_view(cls, view: scores.ExplanationView) -> MatchExplanation:
        return cls(
            decision=view.decision, reason=view.reason, message=view.message, score=view.score,
            factors=[MatchFactor(key=f.key, label=f.label, value=f.value, weight=f.weight, points=f.points,
                                 detail=f.detail) for f in view.factors],
            run_id=view.run_id or None,
        )


@strawberry.type(description="A volunteer the matcher recommends for a task (only what inviting needs)")
class VolunteerRecommendation:
    volunteer_id: strawberry.ID
    name: str
    skills: list[str]
    star_level: int
    distance_km: float | None
    score: float
    explanation: MatchExplanation
    invited: bool

    @classmethod
    def from_domain(cls, r: recommend.VolunteerRecommendation) -> VolunteerRecommendation:
        return cls(volunteer_id=strawberry.ID(encode_id("Volunteer", r.volunteer_id)), name=r.name, skills=r.skills,
                   star_level=hours_domain.star_level(r.total_hours), distance_km=r.distance_km,
                   score=float(r.score), explanation=MatchExplanation.from_view(r.explanation), invited=r.invited)


@strawberry.type(description="A task recommended to the volunteer")
class TaskRecommendation:
    task: t.Task
    score: float
    explanation: MatchExplanation
    invited: bool = strawberry.field(description="The organization invited the volunteer to apply")

    @classmethod
    def from_domain(cls, r: recommend.TaskRecommendation) -> TaskRecommendation:
        return cls(task=t.Task.from_row(r.task, r.distance_km), score=float(r.score),
                   explanation=MatchExplanation.from_view(r.explanation), invited=r.invited)


@strawberry.type(description="A matching batch that decided something")
class MatchingRun:
    id: strawberry.ID
    started_at: datetime
    finished_at: datetime
    tasks: int
    applications: int
    confirmed: int
    waitlisted: int
    rejected: int
    method: str = strawberry.field(description="flow, flow-certified, cp-sat, cp-sat-limit or flow-repair")
    exact: bool = strawberry.field(description="Proven optimal: slots filled first, then total score")
    filled: int
    score: float
    bound_filled: int = strawberry.field(description="A proven upper bound on the slots any decision could fill")
    bound_score: float

    @classmethod
    def from_row(cls, row: Any) -> MatchingRun:
        return cls(id=strawberry.ID(str(row.id)), started_at=row.started_at,
                   finished_at=row.finished_at, tasks=row.tasks, applications=row.applications,
                   confirmed=row.confirmed, waitlisted=row.waitlisted, rejected=row.rejected, method=row.method,
                   exact=row.exact, filled=row.filled, score=row.score / 1000, bound_filled=row.bound_filled,
                   bound_score=row.bound_score / 1000)


@strawberry.type
class MatchingQuery:
    @strawberry.field(description="Eligible volunteers near an under-filled task who have not applied, best first "
                                  "(for those who run the task)")
    async def recommended_volunteers(self, info: Info, task_id: strawberry.ID, first: int | None = None
                                     ) -> list[VolunteerRecommendation]:
        ctx = context_of(info)
        try:
            async with ctx.db.read() as session:
                found = await recommend.recommended_volunteers(session, ctx.actor, decode_id(task_id, "Task", "taskId"),
                                                               first)
        except DomainError as exc:
            raise top_level(exc) from None
        return [VolunteerRecommendation.from_domain(r) for r in found]

    @strawberry.field(description="For you: open tasks the viewer may sign up for, invitations first, then by score")
    async def recommended_tasks(self, info: Info, first: int | None = None) -> list[TaskRecommendation]:
        ctx = context_of(info)
        try:
            async with ctx.db.read() as session:
                found = await recommend.recommended_tasks(session, ctx.actor, first)
        except DomainError as exc:
            raise top_level(exc) from None
        return [TaskRecommendation.from_domain(r) for r in found]

    @strawberry.field(description="The latest matching runs with their proven bounds (city admins)")
    async def matching_runs(self, info: Info, first: int | None = None) -> list[MatchingRun]:
        ctx = context_of(info)
        try:
            async with ctx.db.read() as session:
                found = await runs.latest(session, ctx.actor, first)
        except DomainError as exc:
            raise top_level(exc) from None
        return [MatchingRun.from_row(r) for r in found]


@strawberry.input
class InviteVolunteersInput:
    task_id: strawberry.ID
    volunteer_ids: list[strawberry.ID]


@strawberry.type
class InviteSkip:
    volunteer_id: strawberry.ID
    code: str
    message: str


@strawberry.type
class InviteVolunteersPayload:
    invited: list[strawberry.ID] = strawberry.field(description="Volunteers invited (now or before)")
    skipped: list[InviteSkip] = strawberry.field(description="Volunteers not invited, and why")
    errors: list[t.UserError]


def invite_payload(result: recommend.InviteResult | None, errors: list[t.UserError]) -> InviteVolunteersPayload:
    if result is None:
        return InviteVolunteersPayload(invited=[], skipped=[], errors=errors)
    return InviteVolunteersPayload(
        invited=[strawberry.ID(encode_id("Volunteer", v)) for v in result.invited],
        skipped=[InviteSkip(volunteer_id=strawberry.ID(encode_id("Volunteer", v)), code=code,
                            message=recommend.skip_message(code)) for v, code in result.skipped],
        errors=[],
    )


@strawberry.input
class MarkNoShowInput:
    signup_id: strawberry.ID


@strawberry.input
class SetMatchRadiusInput:
    task_id: strawberry.ID
    radius_km: float | None = strawberry.field(description="Null removes the limit")


@strawberry.type
class MatchingMutation:
    @strawberry.mutation(description="Invite recommended volunteers to apply (inviting twice changes nothing)")
    async def invite_volunteers(self, info: Info, input: InviteVolunteersInput) -> InviteVolunteersPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            if len(input.volunteer_ids) > recommend.MAX_INVITATIONS:
                raise Invalid("TOO_MANY_VOLUNTEERS", f"一次最多邀请 {recommend.MAX_INVITATIONS} 人",
                                        "volunteerIds")
            ids = [decode_id(v, "Volunteer", "volunteerIds") for v in input.volunteer_ids]
            return await recommend.invite_volunteers(session, actor, decode_id(input.task_id, "Task", "taskId"), ids)

        return invite_payload(*await perform(info, action))

    @strawberry.mutation(description="Record that a confirmed volunteer did not come; the slot goes to the waitlist")
    async def mark_no_show(self, info: Info, input: MarkNoShowInput) -> SignupPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await waitlist.mark_no_show(session, actor, decode_id(input.signup_id, "Signup", "signupId"))

        signup, errors = await perform(info, action)
        return SignupPayload(signup=t.Signup.from_row(signup) if signup else None, errors=errors)

    @strawberry.mutation(description="Limit how far from home a task's volunteers may live (a matching rule)")
    async def set_match_radius(self, info: Info, input: SetMatchRadiusInput) -> TaskPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await recommend.set_match_radius(session, actor, decode_id(input.task_id, "Task", "taskId"),
                                                    input.radius_km)

        return await perform_for_task(info, action)


def explanation_of(stored: dict[str, Any], score: Any) -> MatchExplanation:
    """Signup.matchExplanation (types.py resolves it lazily through here)."""
    return MatchExplanation.from_view(scores.describe(stored, score))
