"""GraphQL for service outcomes (服务成效): a task's report, recording it, and the totals in `cityStats`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from youthlink.db.models.enums import LitterCategory as DomainLitter
from youthlink.db.models.enums import ProblemCategory as DomainProblem
from youthlink.domain import inputs, outcomes
from youthlink.domain.actor import Actor
from youthlink.graphql import types as t
from youthlink.graphql.context import context_of
from youthlink.graphql.ids import decode_id
from youthlink.graphql.mutations import perform


@strawberry.type
class LitterLine:
    category: t.LitterCategory  # type: ignore[valid-type]
    kg: float
    items: int | None = strawberry.field(description="Items counted, when counted (in totals: their sum)")


@strawberry.type
class ProblemLine:
    category: t.ProblemCategory  # type: ignore[valid-type]
    count: int


def _litter(lines: list[outcomes.Line]) -> list[LitterLine]:
    return [LitterLine(category=DomainLitter(line.category), kg=float(line.kg or 0), items=line.count)
            for line in lines]


def _problems(lines: list[outcomes.Line]) -> list[ProblemLine]:
    return [ProblemLine(category=DomainProblem(line.category), count=line.count or 0) for line in lines]


@strawberry.type(description="A task's service outcome: litter collected (a beach clean-up) or a river patrol")
class ServiceOutcome:
    kind: t.OutcomeKind  # type: ignore[valid-type]
    litter: list[LitterLine] = strawberry.field(description="By category; empty for a river patrol")
    litter_kg: float
    patrol_km: float | None
    problems_reported: int | None
    problems: list[ProblemLine] = strawberry.field(description="Problems reported, by category (optional)")
    note: str
    recorded_at: datetime

    @classmethod
    def from_report(cls, report: outcomes.Report) -> ServiceOutcome:
        litter = report.kind is outcomes.OutcomeKind.LITTER
        return cls(
            kind=report.kind, litter=_litter(report.lines) if litter else [], litter_kg=float(report.litter_kg),
            patrol_km=float(report.patrol_km) if report.patrol_km is not None else None,
            problems_reported=report.problems_reported, problems=[] if litter else _problems(report.lines),
            note=report.note, recorded_at=report.recorded_at,
        )


@strawberry.type(description="A project's outcomes over the tasks that started in the period and have a report")
class ProjectOutcomes:
    project: t.Project | None
    kind: t.OutcomeKind  # type: ignore[valid-type]
    tasks_reported: int
    litter_kg: float
    litter_items: int
    litter_by_category: list[LitterLine]
    patrol_km: float
    problems_reported: int
    problems_by_category: list[ProblemLine]


async def project_outcomes(info: Info, figures: Any) -> list[ProjectOutcomes]:
    """`cityStats.outcomes`: read only when asked for, in the statistics' scope and period."""
    ctx = context_of(info)
    async with ctx.reads.session() as session:
        found = await outcomes.totals(session, figures.scope, figures.period)
    projects = await ctx.loaders.project.load_many([p.project_id for p in found])
    return [
        ProjectOutcomes(
            project=t.Project.from_row(row) if row is not None else None, kind=p.kind,
            tasks_reported=p.tasks_reported, litter_kg=float(p.litter_kg), litter_items=p.litter_items,
            litter_by_category=_litter(p.litter_by_category), patrol_km=float(p.patrol_km),
            problems_reported=p.problems_reported, problems_by_category=_problems(p.problems_by_category),
        )
        for p, row in zip(found, projects, strict=True)
    ]


@strawberry.input
class LitterLineInput:
    category: t.LitterCategory  # type: ignore[valid-type]
    kg: float
    items: int | None = None


@strawberry.input
class ProblemLineInput:
    category: t.ProblemCategory  # type: ignore[valid-type]
    count: int


@strawberry.input
class RiverPatrolInput:
    km: float
    problems_reported: int
    problems: list[ProblemLineInput] = strawberry.field(default_factory=list)


@strawberry.input(description="Exactly one of litter (a beach clean-up) or patrol (a river patrol), as the task's "
                              "project records")
class RecordServiceOutcomeInput:
    task_id: strawberry.ID
    litter: list[LitterLineInput] | None = None
    patrol: RiverPatrolInput | None = None
    note: str = ""


@strawberry.type
class ServiceOutcomePayload:
    outcome: ServiceOutcome | None = None
    errors: list[t.UserError]


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


@strawberry.type
class OutcomesMutation:
    @strawberry.mutation(description="Record a started task's service outcome; recording again replaces it")
    async def record_service_outcome(self, info: Info, input: RecordServiceOutcomeInput) -> ServiceOutcomePayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            patrol = input.patrol
            command = inputs.RecordOutcome(
                task_id=decode_id(input.task_id, "Task", "taskId"), note=input.note,
                litter=None if input.litter is None else [
                    {"category": x.category, "kg": _decimal(x.kg), "items": x.items} for x in input.litter],
                patrol=None if patrol is None else {
                    "km": _decimal(patrol.km), "problems_reported": patrol.problems_reported,
                    "problems": [{"category": p.category, "count": p.count} for p in patrol.problems]},
            )
            return await outcomes.record_outcome(session, actor, command)

        report, errors = await perform(info, action)
        return ServiceOutcomePayload(outcome=ServiceOutcome.from_report(report) if report else None, errors=errors)
