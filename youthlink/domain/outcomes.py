"""Service outcomes (服务成效): what the tasks of a brand project achieved, and their totals per project and period.

A project declares the outcome its tasks record (`projects.outcome_kind`): a beach clean-up (海洋净滩) records
the litter collected by category and weight, a river patrol (河小二) the kilometres patrolled and the problems
reported. After a task has started, whoever runs it (its organization's admins and those above them, the
city's admins, the leader of the task's team: the same people who approve its hours) records one report for
it; recording again replaces the report (never adds to it), so a corrected or repeated submission leaves
exactly what was sent last. Every recording is audited.

Totals for a period are summed straight from the reports: one per task, so a year of the whole city is a few
thousand rows, found by an index on the task's start (copied into the report, and kept equal by the foreign key
to the task). They count the tasks that started in the period, in the same scopes as the statistics
(`stats.Scope`): the city, an organization with its children, or a volunteer's own (the tasks they have approved
hours for).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, literal, null, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Project, ServiceOutcome, ServiceOutcomeLine, ServiceRecord, Task
from youthlink.db.models.enums import OutcomeKind, RecordStatus, TaskStatus
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import RecordOutcome, StatsPeriod
from youthlink.domain.stats import Scope, period_bounds
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound

KIND_LABELS = {OutcomeKind.LITTER: "垃圾清理（类别与重量）", OutcomeKind.RIVER_PATROL: "巡河（里程与问题）"}
LITTER_LABELS = {"PLASTIC": "塑料", "GLASS": "玻璃", "METAL": "金属", "PAPER": "纸类", "FISHING_GEAR": "渔具",
                 "OTHER": "其他"}
PROBLEM_LABELS = {"POLLUTION": "水体污染", "ILLEGAL_FISHING": "非法捕捞", "GARBAGE": "垃圾堆放",
                  "DAMAGED_FACILITIES": "设施损坏", "OTHER": "其他"}


@dataclass
class Line:
    category: str
    kg: Decimal | None = None  # litter
    count: int | None = None  # litter: items (optional); a patrol: problems of the category


@dataclass
class Report:
    """One task's outcome report."""

    task_id: uuid.UUID
    project_id: uuid.UUID
    kind: OutcomeKind
    patrol_km: Decimal | None
    problems_reported: int | None
    note: str
    recorded_at: datetime
    lines: list[Line] = field(default_factory=list)

    @property
    def litter_kg(self) -> Decimal:
        return sum((line.kg or Decimal(0) for line in self.lines), Decimal(0))


# Recording

async def record_outcome(session: AsyncSession, actor: Actor, command: RecordOutcome) -> Report:
    """Record (or replace) the outcome report of a started task of a project that records outcomes."""
    policies.require_login(actor)
    # The task's row lock serializes two recordings of the same task: the last one wins, whole.
    task = await session.scalar(select(Task).where(Task.id == command.task_id).with_for_update())
    if task is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", "taskId")
    lineage = await organizations.lineage(session, task.organization_id)
    if not policies.manages_task(actor, lineage, task.team_id):
        raise Forbidden("FORBIDDEN", "无权记录该任务的服务成效", "taskId")
    kind = None
    if task.project_id is not None:
        kind = await session.scalar(select(Project.outcome_kind).where(Project.id == task.project_id))
    if kind is None:
        raise Invalid("PROJECT_RECORDS_NO_OUTCOMES", "该任务所属项目不记录服务成效", "taskId")
    if task.status in (TaskStatus.DRAFT, TaskStatus.CANCELLED):
        raise Conflict("TASK_NOT_HELD", "任务未发布或已取消，不能记录服务成效", "taskId")
    if task.starts_at > datetime.now(UTC):
        raise Conflict("TASK_NOT_STARTED", "任务尚未开始，不能记录服务成效", "taskId")
    if command.kind is not kind:
        raise Invalid("WRONG_OUTCOME_KIND", f"该项目记录的服务成效是{KIND_LABELS[kind]}",
                      "litter" if command.litter is not None else "patrol")
    assert task.project_id is not None

    replaced = await session.scalar(select(ServiceOutcome.task_id).where(ServiceOutcome.task_id == task.id))
    patrol = command.patrol
    values = {"project_id": task.project_id, "organization_id": task.organization_id, "starts_at": task.starts_at,
              "kind": kind, "note": command.note, "recorded_by": actor.account_id,
              "recorded_at": func.now(), "patrol_km": patrol.km if patrol else None,
              "problems_reported": patrol.problems_reported if patrol else None}
    await session.execute(delete(ServiceOutcomeLine).where(ServiceOutcomeLine.task_id == task.id))
    statement = insert(ServiceOutcome).values(task_id=task.id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=[ServiceOutcome.task_id], set_=values))
    lines = ([{"task_id": task.id, "kind": kind, "category": line.category.value, "weight_kg": line.kg,
               "count": line.items} for line in command.litter or []]
             + [{"task_id": task.id, "kind": kind, "category": p.category.value, "weight_kg": None,
                 "count": p.count} for p in (patrol.problems if patrol else [])])
    if lines:
        await session.execute(insert(ServiceOutcomeLine).values(lines))
    audit.record(session, actor.account_id, "outcome.record", "task", task.id, kind=kind.value,
                 replaced=replaced is not None,
                 litter={line.category.value: str(line.kg) for line in command.litter or []},
                 patrol_km=str(patrol.km) if patrol else None,
                 problems_reported=patrol.problems_reported if patrol else None)
    return (await reports(session, [task.id]))[task.id]


# Reading

async def reports(session: AsyncSession, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Report]:
    """The reports of these tasks (those that have one), with their lines, in two statements."""
    if not task_ids:
        return {}
    ids = list(dict.fromkeys(task_ids))
    o = ServiceOutcome.__table__
    found = {r.task_id: Report(r.task_id, r.project_id, OutcomeKind(r.kind), r.patrol_km, r.problems_reported,
                               r.note, r.recorded_at)
             for r in await session.execute(select(o).where(o.c.task_id.in_(ids)))}
    if found:
        lines = ServiceOutcomeLine.__table__
        for r in await session.execute(select(lines).where(lines.c.task_id.in_(list(found)))
                                       .order_by(lines.c.task_id, lines.c.category)):
            found[r.task_id].lines.append(Line(r.category, r.weight_kg, r._mapping["count"]))
    return found


@dataclass
class ProjectTotals:
    """A project's outcomes over the tasks that started in a period (those with a report)."""

    project_id: uuid.UUID
    kind: OutcomeKind
    tasks_reported: int = 0
    litter_kg: Decimal = Decimal(0)
    litter_items: int = 0
    patrol_km: Decimal = Decimal(0)
    problems_reported: int = 0
    litter_by_category: list[Line] = field(default_factory=list)
    problems_by_category: list[Line] = field(default_factory=list)

    def figures(self) -> tuple[Any, ...]:
        return (self.project_id, self.kind, self.tasks_reported, self.litter_kg, self.litter_items, self.patrol_km,
                self.problems_reported, [(x.category, x.kg, x.count) for x in self.litter_by_category],
                [(x.category, x.count) for x in self.problems_by_category])


def _reports_in(scope: Scope, start: datetime, end: datetime) -> Any:
    """The scope's reports of tasks that started in [start, end), by the reports' copy of the task's start and
    organization (an index range of one small table)."""
    o = ServiceOutcome.__table__
    query = select(o).where(o.c.starts_at >= start, o.c.starts_at < end)
    if scope.organizations is not None:
        query = query.where(o.c.organization_id.in_(sorted(scope.organizations)))
    if scope.volunteer_id is not None:
        query = query.where(o.c.task_id.in_(select(ServiceRecord.task_id).where(
            ServiceRecord.volunteer_id == scope.volunteer_id, ServiceRecord.status == RecordStatus.APPROVED)))
    return query.cte("period_reports")


async def totals(session: AsyncSession, scope: Scope, period: StatsPeriod) -> list[ProjectTotals]:
    """Per project, the outcomes of the scope's tasks that started in the period, in one statement: per project
    (reports, km, problems) and per project and category (kg, items or problems)."""
    start, end = period_bounds(period)
    o, line = _reports_in(scope, start, end), ServiceOutcomeLine.__table__
    per_project = (
        select(o.c.project_id, o.c.kind, null().label("category"), func.count().label("n"),
               func.sum(o.c.patrol_km).label("km"), func.sum(o.c.problems_reported).label("problems"),
               null().label("kg"), null().label("items"))
        .group_by(o.c.project_id, o.c.kind)
    )
    per_category = (
        select(o.c.project_id, line.c.kind, line.c.category, literal(0), null(), null(),
               func.sum(line.c.weight_kg), func.sum(line.c.count))
        .select_from(line).join(o, o.c.task_id == line.c.task_id)
        .group_by(o.c.project_id, line.c.kind, line.c.category)
    )
    out: dict[uuid.UUID, ProjectTotals] = {}
    by_category: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for r in await session.execute(union_all(per_project, per_category)):
        if r.category is None:
            out[r.project_id] = ProjectTotals(r.project_id, OutcomeKind(r.kind), tasks_reported=int(r.n),
                                              patrol_km=Decimal(r.km or 0), problems_reported=int(r.problems or 0))
        else:
            by_category[r.project_id].append(r)
    for project_id, rows in by_category.items():
        found = out[project_id]
        for r in sorted(rows, key=lambda r: r.category):
            if found.kind is OutcomeKind.LITTER:
                found.litter_by_category.append(Line(r.category, Decimal(r.kg), int(r.items or 0)))
                found.litter_kg += Decimal(r.kg)
                found.litter_items += int(r.items or 0)
            else:
                found.problems_by_category.append(Line(r.category, count=int(r.items or 0)))
    return sorted(out.values(), key=lambda t: (t.kind.value, str(t.project_id)))


__all__ = ["KIND_LABELS", "LITTER_LABELS", "PROBLEM_LABELS", "Line", "ProjectTotals", "Report", "record_outcome",
           "reports", "totals"]
