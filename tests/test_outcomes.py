"""Service outcomes (服务成效): a beach clean-up's litter and a river patrol's stretch and problems, recorded once
per task by whoever runs it (re-recording replaces), refused when wrong with nothing stored, backed by the
database's constraints, and summed per project and period in cityStats and the report."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from tests import factories
from tests.conftest import GraphQL
from tests.test_hours_ledger import approve, credited_record, volunteer_id_of
from youthlink.db.models import AuditEntry, Project, ServiceOutcome, ServiceOutcomeLine, Task
from youthlink.db.models.enums import Role, TaskStatus
from youthlink.domain import outcomes, reports, rollups, stats
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import RecordOutcome, StatsPeriod
from youthlink.errors import DomainError
from youthlink.graphql.ids import encode_id

BEACH, RIVER, WALK = "海洋净滩", "河小二", "爱暴走"
OUTCOME_FIELDS = ("kind litter { category kg items } litterKg patrolKm problemsReported "
                  "problems { category count } note")
RECORD = ("mutation($i: RecordServiceOutcomeInput!) { recordServiceOutcome(input: $i) { outcome { "
          + OUTCOME_FIELDS + " } errors { field message code } } }")
TASK_OUTCOME = "query($id: ID!) { node(id: $id) { ... on Task { outcome { " + OUTCOME_FIELDS + " } } } }"
CITY_OUTCOMES = ("query($from: Date!, $to: Date!) { cityStats(from: $from, to: $to) { outcomes { project { name } "
                 "kind tasksReported litterKg litterItems litterByCategory { category kg items } patrolKm "
                 "problemsReported problemsByCategory { category count } } } }")


async def project_id(db: Any, name: str) -> uuid.UUID:
    async with db.read() as session:
        found = await session.scalar(select(Project.id).where(Project.name == name))
    assert found is not None
    return found


async def a_task(db: Any, actor: Actor, project: str | None, *, days_ago: float = 2, **overrides: Any) -> Task:
    """A task of the project that started `days_ago` (negative: in the future)."""
    pid = await project_id(db, project) if project else None
    return await factories.task(db, actor, starts_in=-timedelta(days=days_ago), hours=3, project_id=pid,
                                **overrides)


def litter(task_id: uuid.UUID, *lines: tuple[str, str, int | None], note: str = "") -> RecordOutcome:
    return RecordOutcome.model_validate({"taskId": task_id, "note": note, "litter": [
        {"category": c, "kg": Decimal(kg), "items": n} for c, kg, n in lines]})


def patrol(task_id: uuid.UUID, km: str, reported: int, *problems: tuple[str, int]) -> RecordOutcome:
    return RecordOutcome.model_validate({"taskId": task_id, "patrol": {
        "km": Decimal(km), "problemsReported": reported,
        "problems": [{"category": c, "count": n} for c, n in problems]}})


async def record(db: Any, actor: Actor, command: RecordOutcome) -> outcomes.Report:
    async with db.unit_of_work() as session:
        return await outcomes.record_outcome(session, actor, command)


async def stored(db: Any, task_id: uuid.UUID) -> tuple[Any, list[tuple[Any, ...]]]:
    async with db.read() as session:
        outcome = (await session.execute(select(ServiceOutcome.__table__).where(
            ServiceOutcome.task_id == task_id))).first()
        lines = [tuple(r) for r in (await session.execute(
            select(ServiceOutcomeLine.category, ServiceOutcomeLine.weight_kg, ServiceOutcomeLine.count)
            .where(ServiceOutcomeLine.task_id == task_id).order_by(ServiceOutcomeLine.category))).all()]
    return outcome, lines


async def test_a_clean_up_is_recorded_and_recording_again_replaces_it(db: Any, gql: GraphQL, clean: None) -> None:
    # given a beach clean-up of organization X that took place two days ago, and X's admin
    admin, token = await factories.admin(db)
    task = await a_task(db, admin, BEACH)

    # when the admin records its litter
    first = await record(db, admin, litter(task.id, ("PLASTIC", "12.5", 340), ("GLASS", "3.2", None),
                                           note="金沙滩"))

    # then the report holds it
    assert first.kind.value == "LITTER" and first.litter_kg == Decimal("15.7")
    assert (await stored(db, task.id))[1] == [("GLASS", Decimal("3.20"), None), ("PLASTIC", Decimal("12.50"), 340)]

    # when they record it again, corrected (through GraphQL), and once more the same way
    variables = {"i": {"taskId": encode_id("Task", task.id), "litter": [
        {"category": "PLASTIC", "kg": 14.0, "items": 360}, {"category": "FISHING_GEAR", "kg": 6.25}]}}
    body = await gql(RECORD, variables, token=token)
    again = await gql(RECORD, variables, token=token)

    # then the report is replaced, not added to: exactly the last lines, however often it is sent
    payload = body["data"]["recordServiceOutcome"]
    assert payload["errors"] == [] and again["data"]["recordServiceOutcome"] == payload
    assert payload["outcome"]["litterKg"] == 20.25 and payload["outcome"]["note"] == ""
    outcome, lines = await stored(db, task.id)
    assert lines == [("FISHING_GEAR", Decimal("6.25"), None), ("PLASTIC", Decimal("14.00"), 360)]
    assert outcome.recorded_by == admin.account_id
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ServiceOutcome)) == 1
        trail = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "outcome.record")
                                       .order_by(AuditEntry.id))).all()
    assert [e.data["replaced"] for e in trail] == [False, True, True]
    assert all(e.entity_id == str(task.id) and e.actor_account_id == admin.account_id for e in trail)
    assert trail[-1].data["litter"] == {"PLASTIC": "14.0", "FISHING_GEAR": "6.25"}

    # and the task shows its outcome to anyone who sees the task
    _, volunteer_token = await factories.volunteer(db)
    shown = await gql(TASK_OUTCOME, {"id": encode_id("Task", task.id)}, token=volunteer_token)
    assert shown["data"]["node"]["outcome"] == payload["outcome"]


async def test_a_river_patrol_records_its_stretch_and_problems(db: Any, gql: GraphQL, clean: None) -> None:
    # given a river patrol that took place, and a project without outcomes
    admin, token = await factories.admin(db)
    task = await a_task(db, admin, RIVER)

    # when the admin records 4.5 km and 3 problems, two of them by category
    body = await gql(RECORD, {"i": {"taskId": encode_id("Task", task.id), "patrol": {
        "km": 4.5, "problemsReported": 3, "problems": [{"category": "GARBAGE", "count": 2}]}}}, token=token)

    # then
    outcome = body["data"]["recordServiceOutcome"]["outcome"]
    assert outcome == {"kind": "RIVER_PATROL", "litter": [], "litterKg": 0.0, "patrolKm": 4.5,
                       "problemsReported": 3, "problems": [{"category": "GARBAGE", "count": 2}], "note": ""}
    row, lines = await stored(db, task.id)
    assert (row.patrol_km, row.problems_reported, lines) == (Decimal("4.50"), 3, [("GARBAGE", None, 2)])


async def refused(db: Any, actor: Actor, command: RecordOutcome) -> str:
    with pytest.raises(DomainError) as caught:
        await record(db, actor, command)
    return caught.value.code


async def test_wrong_input_is_refused_and_nothing_is_stored(db: Any, gql: GraphQL, clean: None) -> None:
    # given a beach clean-up, a river patrol, a walk (no outcomes), a task of no project, a clean-up tomorrow
    # and a cancelled one
    admin, token = await factories.admin(db)
    beach, river = await a_task(db, admin, BEACH), await a_task(db, admin, RIVER)
    walk, later = await a_task(db, admin, WALK), await a_task(db, admin, BEACH, days_ago=-1)
    cancelled = await a_task(db, admin, BEACH)
    async with db.unit_of_work() as session:
        await session.execute(update(Task).where(Task.id == cancelled.id).values(status=TaskStatus.CANCELLED))
    none = await a_task(db, admin, None)

    # then a negative or absurd weight, an unknown or repeated category, both kinds or none are refused as input
    for bad in ({"litter": [{"category": "PLASTIC", "kg": Decimal("-1")}]},
                {"litter": [{"category": "PLASTIC", "kg": Decimal("0")}]},
                {"litter": [{"category": "PLASTIC", "kg": Decimal("10001")}]},
                {"litter": [{"category": "PLASTIC", "kg": Decimal("1.234")}]},
                {"litter": [{"category": "TYRES", "kg": Decimal("1")}]},
                {"litter": [{"category": "GLASS", "kg": Decimal("1")}, {"category": "GLASS", "kg": Decimal("2")}]},
                {"litter": []}, {},
                {"litter": [{"category": "GLASS", "kg": Decimal("1")}], "patrol": {"km": 1, "problemsReported": 0}},
                {"patrol": {"km": Decimal("0"), "problemsReported": 0}},
                {"patrol": {"km": Decimal("3"), "problemsReported": 1, "problems": [
                    {"category": "GARBAGE", "count": 2}]}},
                {"patrol": {"km": Decimal("3"), "problemsReported": 1, "problems": [
                    {"category": "SHARKS", "count": 1}]}}):
        with pytest.raises(ValidationError):
            RecordOutcome.model_validate({"taskId": beach.id, **bad})
    # and through GraphQL: a negative weight is a payload error, an unknown category a validation error
    body = await gql(RECORD, {"i": {"taskId": encode_id("Task", beach.id),
                                    "litter": [{"category": "PLASTIC", "kg": -2.0}]}}, token=token)
    assert body["data"]["recordServiceOutcome"]["errors"][0]["field"] == "litter.kg"
    body = await gql(RECORD, {"i": {"taskId": encode_id("Task", beach.id),
                                    "litter": [{"category": "TYRES", "kg": 2.0}]}}, token=token, expect_errors=True)
    assert body["errors"] and body.get("data") is None

    # and the rules that need the task are refused with their codes
    assert await refused(db, admin, patrol(beach.id, "2", 0)) == "WRONG_OUTCOME_KIND"
    assert await refused(db, admin, litter(river.id, ("PLASTIC", "1", None))) == "WRONG_OUTCOME_KIND"
    assert await refused(db, admin, litter(walk.id, ("PLASTIC", "1", None))) == "PROJECT_RECORDS_NO_OUTCOMES"
    assert await refused(db, admin, litter(none.id, ("PLASTIC", "1", None))) == "PROJECT_RECORDS_NO_OUTCOMES"
    assert await refused(db, admin, litter(later.id, ("PLASTIC", "1", None))) == "TASK_NOT_STARTED"
    assert await refused(db, admin, litter(cancelled.id, ("PLASTIC", "1", None))) == "TASK_NOT_HELD"
    assert await refused(db, admin, litter(uuid.uuid4(), ("PLASTIC", "1", None))) == "TASK_NOT_FOUND"

    # and nothing was stored, nor audited
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ServiceOutcome)) == 0
        assert await session.scalar(select(func.count()).select_from(ServiceOutcomeLine)) == 0
        assert not await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "outcome.record"))

    # and a refused re-recording leaves the previous report as it was
    await record(db, admin, litter(beach.id, ("METAL", "2.5", 4)))
    assert await refused(db, admin, patrol(beach.id, "1", 0)) == "WRONG_OUTCOME_KIND"
    assert (await stored(db, beach.id))[1] == [("METAL", Decimal("2.50"), 4)]


async def test_the_database_holds_the_invariants_whatever_the_code_does(db: Any, clean: None) -> None:
    # given a recorded clean-up and a river patrol and a walk
    admin, _ = await factories.admin(db)
    beach, river, walk = (await a_task(db, admin, BEACH), await a_task(db, admin, RIVER),
                          await a_task(db, admin, WALK))
    await record(db, admin, litter(beach.id, ("PLASTIC", "1", None)))
    beach_project, walk_project = await project_id(db, BEACH), await project_id(db, WALK)

    # then rows that break a rule are refused by PostgreSQL itself
    river_project = await project_id(db, RIVER)

    def report(task: Task, project: uuid.UUID, kind: str, km: str = "NULL", problems: str = "NULL",
               start: str = "starts_at") -> str:
        """A report row with its task's organization and start, as copied from the task row."""
        return (f"INSERT INTO service_outcomes (task_id, project_id, organization_id, starts_at, kind, patrol_km, "
                f"problems_reported) SELECT id, '{project}', organization_id, {start}, '{kind}', {km}, {problems} "
                f"FROM tasks WHERE id = '{task.id}'")

    def line(kind: str, category: str, kg: str = "NULL", count: str = "NULL") -> str:
        return (f"INSERT INTO service_outcome_lines (task_id, kind, category, weight_kg, count) "
                f"VALUES ('{beach.id}', '{kind}', '{category}', {kg}, {count})")

    broken = [
        # a second report for the task; a report of another kind than its project's; of a project not its task's;
        # with another start than its task's
        report(beach, beach_project, "LITTER"), report(river, river_project, "LITTER"),
        report(walk, walk_project, "LITTER"), report(river, beach_project, "LITTER"),
        report(river, river_project, "RIVER_PATROL", "2", "0", start="starts_at - interval '1 day'"),
        # a patrol without a stretch, or with a negative one, or without a problem count
        report(river, river_project, "RIVER_PATROL", "NULL", "0"),
        report(river, river_project, "RIVER_PATROL", "-1", "0"),
        report(river, river_project, "RIVER_PATROL", "2", "NULL"),
        # a line: a second one of a category, an unknown category, no or a negative weight, of the other kind
        line("LITTER", "PLASTIC", "2"), line("LITTER", "TYRES", "2"), line("LITTER", "GLASS", "-2"),
        line("LITTER", "GLASS"), line("RIVER_PATROL", "GARBAGE", count="1"),
        # and a project cannot change its kind under its tasks' reports
        f"UPDATE projects SET outcome_kind = 'RIVER_PATROL' WHERE id = '{beach_project}'",
    ]
    for statement in broken:
        with pytest.raises(IntegrityError):
            async with db.unit_of_work() as session:
                await session.execute(text(statement))
    assert (await stored(db, beach.id))[1] == [("PLASTIC", Decimal("1.00"), None)]
    # and a rescheduled task carries its report along (the copy of its start cannot drift)
    async with db.unit_of_work() as session:
        await session.execute(text(report(river, river_project, "RIVER_PATROL", "2", "0")))
        await session.execute(update(Task).where(Task.id == river.id).values(
            starts_at=river.starts_at - timedelta(hours=1), ends_at=river.ends_at - timedelta(hours=1)))
    assert (await stored(db, river.id))[0].starts_at == river.starts_at - timedelta(hours=1)


def period_around(days: list[datetime]) -> StatsPeriod:
    return StatsPeriod.model_validate({"from": min(rollups.city_day(d) for d in days),
                                       "to": max(rollups.city_day(d) for d in days)})


DIRECT_SUMS = """
SELECT o.project_id, count(DISTINCT o.task_id) AS tasks, coalesce(sum(o.patrol_km), 0) AS km,
       coalesce(sum(o.problems_reported), 0) AS problems,
       (SELECT coalesce(sum(l.weight_kg), 0) FROM service_outcome_lines l JOIN service_outcomes o2
          ON o2.task_id = l.task_id JOIN tasks t2 ON t2.id = o2.task_id
        WHERE o2.project_id = o.project_id AND l.kind = 'LITTER' AND t2.starts_at >= :start
          AND t2.starts_at < :end AND t2.organization_id = ANY(:orgs)) AS kg
FROM service_outcomes o JOIN tasks t ON t.id = o.task_id
WHERE t.starts_at >= :start AND t.starts_at < :end AND t.organization_id = ANY(:orgs)
GROUP BY o.project_id
"""


async def test_city_stats_sums_the_outcomes_per_project_and_period_in_each_scope(db: Any, gql: GraphQL,
                                                                                 clean: None) -> None:
    # given clean-ups and patrols of two organizations over the last weeks, one before the period, one reported
    # by a volunteer's own task
    admin_x, x_token = await factories.admin(db)
    admin_y, y_token = await factories.admin(db, Role.ORG_ADMIN, "温岭市医疗青年联合会")
    _, city_token = await factories.admin(db, Role.CITY_ADMIN, None)
    y_org = await factories.organization(db, "温岭市医疗青年联合会")
    volunteer, vid, v_token = await volunteer_id_of(db)
    served = await credited_record(db, admin_x, vid, days_ago=6, project_id=await project_id(db, BEACH))
    await approve(db, admin_x, served.id)
    x_beach = [served.task_id, (await a_task(db, admin_x, BEACH, days_ago=3)).id]
    x_river = (await a_task(db, admin_x, RIVER, days_ago=4)).id
    y_beach = (await a_task(db, admin_y, BEACH, days_ago=5, organization_id=y_org.id)).id
    old = (await a_task(db, admin_x, BEACH, days_ago=60)).id
    assert served.task_id is not None
    await record(db, admin_x, litter(x_beach[0], ("PLASTIC", "10.5", 100), ("GLASS", "2", None)))
    await record(db, admin_x, litter(x_beach[1], ("PLASTIC", "4.25", None), ("METAL", "1", 3)))
    await record(db, admin_x, patrol(x_river, "6.5", 4, ("POLLUTION", 1), ("GARBAGE", 2)))
    await record(db, admin_y, litter(y_beach, ("FISHING_GEAR", "30", None)))
    await record(db, admin_x, litter(old, ("PLASTIC", "99", None)))
    async with db.read() as session:
        starts = list((await session.scalars(select(Task.starts_at).where(
            Task.id.in_([*x_beach, x_river, y_beach])))).all())
    period = period_around(starts)
    window = {"from": period.from_.isoformat(), "to": period.to.isoformat()}

    # when the city admin asks for the period's figures
    city = (await gql(CITY_OUTCOMES, window, token=city_token))["data"]["cityStats"]["outcomes"]

    # then each project's totals are the sums of its reports in the period (the older one left out)
    by_name = {o["project"]["name"]: o for o in city}
    assert set(by_name) == {BEACH, RIVER}
    assert by_name[BEACH]["tasksReported"] == 3 and by_name[BEACH]["litterKg"] == 47.75
    assert by_name[BEACH]["litterItems"] == 103 and by_name[BEACH]["patrolKm"] == 0
    assert by_name[BEACH]["litterByCategory"] == [
        {"category": "FISHING_GEAR", "kg": 30.0, "items": 0}, {"category": "GLASS", "kg": 2.0, "items": 0},
        {"category": "METAL", "kg": 1.0, "items": 3}, {"category": "PLASTIC", "kg": 14.75, "items": 100}]
    assert by_name[RIVER] | {"project": None} == {
        "project": None, "kind": "RIVER_PATROL", "tasksReported": 1, "litterKg": 0.0, "litterItems": 0,
        "litterByCategory": [], "patrolKm": 6.5, "problemsReported": 4,
        "problemsByCategory": [{"category": "GARBAGE", "count": 2}, {"category": "POLLUTION", "count": 1}]}
    # and they equal a direct sum over the tables, in the city's and in an organization's scope
    start, end = stats.period_bounds(period)
    async with db.read() as session:
        everyone = [r.id for r in (await session.execute(text("SELECT id FROM organizations"))).all()]
        x_org = (await factories.organization(db)).id
        for orgs, scope in ((everyone, stats.Scope()), ([x_org], stats.Scope(organizations=frozenset({x_org})))):
            direct = {r.project_id: r for r in (await session.execute(text(DIRECT_SUMS), {
                "start": start, "end": end, "orgs": orgs})).all()}
            found = {t.project_id: t for t in await outcomes.totals(session, scope, period)}
            assert found.keys() == direct.keys()
            for pid, r in direct.items():
                assert (found[pid].tasks_reported, found[pid].patrol_km, found[pid].problems_reported,
                        found[pid].litter_kg) == (r.tasks, r.km, r.problems, r.kg)

    # and an organization's admin sees their organization's, a volunteer the tasks they served
    x = {o["project"]["name"]: o for o in
         (await gql(CITY_OUTCOMES, window, token=x_token))["data"]["cityStats"]["outcomes"]}
    assert x[BEACH]["litterKg"] == 17.75 and x[RIVER]["patrolKm"] == 6.5
    y = (await gql(CITY_OUTCOMES, window, token=y_token))["data"]["cityStats"]["outcomes"]
    assert [(o["project"]["name"], o["litterKg"]) for o in y] == [(BEACH, 30.0)]
    own = (await gql(CITY_OUTCOMES, window, token=v_token))["data"]["cityStats"]["outcomes"]
    assert [(o["project"]["name"], o["tasksReported"], o["litterKg"]) for o in own] == [(BEACH, 1, 12.5)]
    assert volunteer.volunteer_id == vid


async def test_the_report_has_an_outcomes_sheet_with_numbers(db: Any, clean: None) -> None:
    # given a clean-up and a patrol this month (or last month's, on the 1st and 2nd)
    admin, _ = await factories.admin(db)
    city, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    beach, river = await a_task(db, admin, BEACH, days_ago=1.5), await a_task(db, admin, RIVER, days_ago=1.5)
    await record(db, admin, litter(beach.id, ("PLASTIC", "8.5", 120), ("PAPER", "1.25", None)))
    await record(db, admin, patrol(river.id, "3.2", 2, ("ILLEGAL_FISHING", 1)))
    month = rollups.city_day(beach.starts_at).strftime("%Y-%m")

    # when the city admin's report for the month is built as XLSX and read back
    async with db.read() as session:
        report = await reports.build(session, city, month)
    book = load_workbook(io.BytesIO(reports.to_xlsx(report)))

    # then the 服务成效 sheet has a row per project, Chinese headers, numbers stored as numbers
    rows = list(book["服务成效"].iter_rows(values_only=True))
    headers = rows[0]
    assert headers[:4] == ("项目", "成效类型", "记录任务数", "垃圾合计（千克）")
    by_project = {r[0]: dict(zip(headers, r, strict=True)) for r in rows[1:]}
    assert by_project[BEACH]["成效类型"] == "垃圾清理" and by_project[BEACH]["记录任务数"] == 1
    assert by_project[BEACH]["垃圾合计（千克）"] == 9.75 and by_project[BEACH]["塑料（千克）"] == 8.5
    assert by_project[BEACH]["纸类（千克）"] == 1.25 and by_project[BEACH]["玻璃（千克）"] == 0
    assert by_project[BEACH]["垃圾件数"] == 120 and by_project[BEACH]["巡河里程（公里）"] is None
    assert by_project[RIVER]["巡河里程（公里）"] == 3.2 and by_project[RIVER]["上报问题数"] == 2
    assert by_project[RIVER]["非法捕捞（个）"] == 1 and by_project[RIVER]["垃圾合计（千克）"] is None
    assert isinstance(by_project[BEACH]["垃圾合计（千克）"], float)
    assert isinstance(by_project[RIVER]["上报问题数"], int)
