"""The permission matrix: every mutation and every query that returns personal data, tried as each kind of
user, must pass exactly where the table says. The same table is printed in the README.

Actors: anonymous; volunteers A and B; L, the leader of a team of organization X in which A serves;
the admins of organizations X and Y; a city admin. A signed up for a task of X, so X's admins serve with A.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import parse
from sqlalchemy import select

from tests import factories
from tests.conftest import GraphQL, operation
from youthlink.db.models import Organization, Project, Task, Team
from youthlink.db.models.enums import AssignmentMode, Role
from youthlink.domain import hours, management, signups, tasks
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import CheckIn, CreateProject, CreateTeam, RecordServiceHours
from youthlink.graphql.ids import encode_id
from youthlink.graphql.schema import build_schema

ACTORS = ["anonymous", "volunteer A", "volunteer B", "team leader", "org X admin", "org Y admin", "city admin"]
VOLUNTEERS = {"volunteer A", "volunteer B", "team leader"}
ADMINS_OF_X = {"org X admin", "city admin"}
EVERYONE = set(ACTORS)
LOGGED_IN = EVERYONE - {"anonymous"}
README = Path(__file__).resolve().parent.parent / "README.md"
REFUSALS = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_A_VOLUNTEER"}


@dataclass
class World:
    db: Any
    actors: dict[str, Actor]
    tokens: dict[str, str | None]
    org_x: Organization
    org_y: Organization
    team: Team
    city: Actor
    made: int = 0
    made_now: int = 0
    trying: str = ""  # the actor the scenario is being set up for

    @property
    def a(self) -> Actor:
        return self.actors["volunteer A"]

    @property
    def b(self) -> Actor:
        return self.actors["volunteer B"]

    async def task(self, *, past: bool = False, mode: AssignmentMode = AssignmentMode.FIRST_COME) -> Task:
        """A task of X; each one at its own time, so A's sign-ups never clash."""
        self.made += 1
        starts_in = -timedelta(days=self.made) if past else timedelta(days=2, hours=4 * self.made)
        return await factories.task(self.db, self.city, slots=10, starts_in=starts_in, hours=2, mode=mode)

    async def task_on_now(self) -> Task:
        """A short task starting within minutes (check-in is open), after the previous one of its kind."""
        self.made_now += 1
        return await factories.task(self.db, self.city, slots=10, starts_in=timedelta(minutes=3 * self.made_now),
                                    hours=0.04)

    async def signup_of_a(self, task: Task) -> uuid.UUID:
        async with self.db.unit_of_work() as session:
            signup = await signups.add_participant(session, self.city, task.id, self.a.volunteer_id)  # type: ignore[arg-type]
        return signup.id

    async def record_of_a(self, approved: bool = False, volunteer: Actor | None = None) -> uuid.UUID:
        """A service record on one of X's past tasks (for A, or the given volunteer)."""
        task = await self.task(past=True)
        async with self.db.unit_of_work() as session:
            signup = await signups.add_participant(session, self.city, task.id,
                                                   (volunteer or self.a).volunteer_id)  # type: ignore[arg-type]
            record = await hours.record_paper_hours(session, self.city, RecordServiceHours(
                signup_id=signup.id, started_at=task.starts_at, ended_at=task.ends_at))
            if approved:
                await hours.approve_records(session, self.city, [record.id])
        return record.id


Scenario = Callable[[World], Awaitable[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class Cell:
    """One operation: how to set it up for one try, and who may do it."""

    name: str
    allowed: frozenset[str]
    scenario: Scenario
    # For queries: a custom reading of "allowed" (default: no refusal and no payload errors).
    passes: Callable[[dict[str, Any], World], bool] | None = None


def gid(kind: str, value: uuid.UUID) -> str:
    return encode_id(kind, value)


async def _register(w: World) -> tuple[str, dict[str, Any]]:
    return operation("RegisterVolunteer"), {"input": {"name": "新人", "phone": factories.next_phone(),
                                                      "password": factories.PASSWORD, "birthDate": "2000-02-02"}}


async def _login(w: World) -> tuple[str, dict[str, Any]]:
    phone = factories.next_phone()
    await _register_direct(w, phone)
    return operation("Login"), {"input": {"phone": phone, "password": factories.PASSWORD}}


async def _register_direct(w: World, phone: str) -> None:
    from youthlink.domain import accounts
    from youthlink.domain.inputs import RegisterVolunteer

    async with w.db.unit_of_work() as session:
        await accounts.register_volunteer(session, RegisterVolunteer(
            name="新人", phone=phone, password=factories.PASSWORD, birth_date=datetime(2000, 1, 1).date()))


async def _create_task(w: World) -> tuple[str, dict[str, Any]]:
    starts = datetime.now(UTC) + timedelta(days=3)
    return operation("CreateTask"), {"input": {
        "organizationId": gid("Organization", w.org_x.id), "title": "河小二 · 巡河", "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=2)).isoformat(), "slots": 5,
        "location": {"address": "九龙湖", "lat": 28.37, "lng": 121.37}}}


async def _update_task(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task()
    later = task.starts_at + timedelta(hours=1)
    return ("mutation($i: UpdateTaskInput!) { updateTask(input: $i) { task { id } errors { field message code } } }",
            {"i": {"taskId": gid("Task", task.id), "startsAt": later.isoformat(),
                   "endsAt": (later + timedelta(hours=2)).isoformat()}})


async def _cancel_task(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task()
    return ("mutation($i: CancelTaskInput!) { cancelTask(input: $i) { task { id } errors { field message code } } }",
            {"i": {"taskId": gid("Task", task.id), "reason": "天气原因"}})


async def _request_matching(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task(mode=AssignmentMode.MATCHED)
    return operation("RequestMatching"), {"taskId": gid("Task", task.id)}


async def _sign_up(w: World) -> tuple[str, dict[str, Any]]:
    return operation("SignUp"), {"taskId": gid("Task", (await w.task()).id)}


async def _cancel(w: World) -> tuple[str, dict[str, Any]]:
    return operation("CancelSignup"), {"signupId": gid("Signup", await w.signup_of_a(await w.task())), "reason": None}


async def _check_in(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task_on_now()
    return operation("CheckIn"), {"input": {"signupId": gid("Signup", await w.signup_of_a(task)),
                                            "code": tasks.current_checkin_code(task),
                                            "location": {"lat": 28.26, "lng": 121.61}}}


async def _check_out(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task_on_now()
    signup_id = await w.signup_of_a(task)
    async with w.db.unit_of_work() as session:
        await signups.check_in(session, w.a, CheckIn(signup_id=signup_id, code=tasks.current_checkin_code(task),
                                                     location={"lat": 28.26, "lng": 121.61}))
    return operation("CheckOut"), {"input": {"signupId": gid("Signup", signup_id)}}


async def _add_participant(w: World) -> tuple[str, dict[str, Any]]:
    assert w.b.volunteer_id is not None
    return operation("AddParticipant"), {"taskId": gid("Task", (await w.task()).id),
                                         "volunteerId": gid("Volunteer", w.b.volunteer_id)}


async def _record_hours(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task(past=True)
    return operation("RecordServiceHours"), {"input": {
        "signupId": gid("Signup", await w.signup_of_a(task)), "startedAt": task.starts_at.isoformat(),
        "endedAt": task.ends_at.isoformat(), "note": "纸质签到表"}}


async def _approve(w: World) -> tuple[str, dict[str, Any]]:
    return operation("ApproveServiceRecords"), {"ids": [gid("ServiceRecord", await w.record_of_a())]}


async def _adjust(w: World) -> tuple[str, dict[str, Any]]:
    return operation("AdjustServiceRecord"), {"input": {
        "recordId": gid("ServiceRecord", await w.record_of_a(approved=True)), "hours": -0.5, "reason": "提前离场"}}


async def _logout(w: World) -> tuple[str, dict[str, Any]]:
    return "mutation { logout { ok errors { field message code } } }", {}


async def _set_id_card(w: World) -> tuple[str, dict[str, Any]]:
    from tests.test_accounts import id_card

    return ("mutation($n: String!) { setIdCard(input: {idCard: $n}) { errors { field message code } } }",
            {"n": id_card(uuid.uuid4().int % 10_000)})


async def _guardian_consent(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation { recordGuardianConsent(input: {guardianName: \"监护人\"}) { errors { field message code } } }",
            {})


MUTATION_CREATE_ORG = ("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) "
                       "{ organization { id } errors { field message code } } }")


async def _create_affiliated_org(w: World) -> tuple[str, dict[str, Any]]:
    committee = await factories.organization(w.db, "共青团温岭市委员会")
    return MUTATION_CREATE_ORG, {"i": {"name": f"新组织{uuid.uuid4().hex[:6]}", "kind": "AFFILIATED_ORG",
                                       "parentId": gid("Organization", committee.id)}}


async def _create_child_org(w: World) -> tuple[str, dict[str, Any]]:
    return MUTATION_CREATE_ORG, {"i": {"name": f"新分会{uuid.uuid4().hex[:6]}", "kind": "OTHER",
                                       "parentId": gid("Organization", w.org_x.id)}}


def _org_volunteer(field: str) -> Scenario:
    async def scenario(w: World) -> tuple[str, dict[str, Any]]:
        volunteer, _ = await factories.volunteer(w.db)
        assert volunteer.volunteer_id is not None
        if field == "revokeOrgAdmin":
            async with w.db.unit_of_work() as session:
                await management.appoint_org_admin(session, w.city, w.org_x.id, volunteer.volunteer_id)
        return (f"mutation($i: OrganizationVolunteerInput!) {{ {field}(input: $i) "
                "{ errors { field message code } } }",
                {"i": {"organizationId": gid("Organization", w.org_x.id),
                       "volunteerId": gid("Volunteer", volunteer.volunteer_id)}})

    return scenario


async def _create_team(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: CreateTeamInput!) { createTeam(input: $i) { errors { field message code } } }",
            {"i": {"organizationId": gid("Organization", w.org_x.id), "name": f"新队{uuid.uuid4().hex[:6]}"}})


def _team_volunteer(field: str) -> Scenario:
    async def scenario(w: World) -> tuple[str, dict[str, Any]]:
        volunteer, _ = await factories.volunteer(w.db)
        assert volunteer.volunteer_id is not None
        if field in ("removeTeamMember", "appointTeamLeader"):
            async with w.db.unit_of_work() as session:
                await management.add_team_member(session, w.city, w.team.id, volunteer.volunteer_id)
        return (f"mutation($i: TeamVolunteerInput!) {{ {field}(input: $i) {{ errors {{ field message code }} }} }}",
                {"i": {"teamId": gid("Team", w.team.id), "volunteerId": gid("Volunteer", volunteer.volunteer_id)}})

    return scenario


async def _project_of_x(w: World) -> uuid.UUID:
    async with w.db.unit_of_work() as session:
        project = await management.create_project(session, w.city, CreateProject(
            owner_organization_id=w.org_x.id, name=f"项目{uuid.uuid4().hex[:6]}"))
    return project.id


async def _create_project(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: CreateProjectInput!) { createProject(input: $i) { errors { field message code } } }",
            {"i": {"ownerOrganizationId": gid("Organization", w.org_x.id), "name": f"项目{uuid.uuid4().hex[:6]}"}})


async def _add_partner(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: ProjectOrganizationInput!) { addProjectPartner(input: $i) "
            "{ errors { field message code } } }",
            {"i": {"projectId": gid("Project", await _project_of_x(w)),
                   "organizationId": gid("Organization", w.org_y.id)}})


async def _add_project_team(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: ProjectTeamInput!) { addProjectTeam(input: $i) { errors { field message code } } }",
            {"i": {"projectId": gid("Project", await _project_of_x(w)), "teamId": gid("Team", w.team.id)}})


async def _reject(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: RejectServiceRecordsInput!) { rejectServiceRecords(input: $i) "
            "{ errors { field message code } } }",
            {"i": {"ids": [gid("ServiceRecord", await w.record_of_a())], "reason": "未到场"}})


async def _request_correction(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: RequestCorrectionInput!) { requestCorrection(input: $i) "
            "{ errors { field message code } } }",
            {"i": {"recordId": gid("ServiceRecord", await w.record_of_a(approved=True)), "hours": 0.5,
                   "what": "少记半小时", "why": "签退晚了"}})


async def _decide_correction(w: World) -> tuple[str, dict[str, Any]]:
    from youthlink.domain.hours.commands import RequestCorrection

    record_id = await w.record_of_a(approved=True)
    async with w.db.unit_of_work() as session:
        request = await hours.request_correction(session, w.a, RequestCorrection(
            record_id=record_id, hours=Decimal("0.5"), what="少记半小时", why="签退晚了"))
    return ("mutation($i: DecideCorrectionInput!) { decideCorrection(input: $i) { errors { field message code } } }",
            {"i": {"requestId": gid("CorrectionRequest", request.id), "accept": True, "reason": "核实无误"}})


async def _set_auto_approval(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: SetAutoApprovalInput!) { setAutoApproval(input: $i) { errors { field message code } } }",
            {"i": {"organizationId": gid("Organization", w.org_x.id), "days": 7}})


async def _request_certificate(w: World) -> tuple[str, dict[str, Any]]:
    # Whoever tries has approved hours at X of their own (admins have no volunteer profile).
    volunteer = w.actors[w.trying] if w.trying in VOLUNTEERS else w.a
    await w.record_of_a(approved=True, volunteer=volunteer)
    return ("mutation($i: RequestCertificateInput!) { requestCertificate(input: $i) "
            "{ errors { field message code } } }", {"i": {"organizationId": gid("Organization", w.org_x.id)}})


async def _certificate_of_a(w: World, issued: bool) -> uuid.UUID:
    """A certificate asked of X by a fresh volunteer with hours at X (one open request per volunteer)."""
    from youthlink.domain import certificates
    from youthlink.domain.hours.commands import RequestCertificate

    volunteer, _ = await factories.volunteer(w.db)
    await w.record_of_a(approved=True, volunteer=volunteer)
    async with w.db.unit_of_work() as session:
        certificate = await certificates.request_certificate(session, volunteer, RequestCertificate(
            organization_id=w.org_x.id))
        if issued:
            await certificates.issue_certificate(session, w.city, certificate.id)
    return certificate.id


async def _issue_certificate(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: IssueCertificateInput!) { issueCertificate(input: $i) { errors { field message code } } }",
            {"i": {"certificateId": gid("Certificate", await _certificate_of_a(w, issued=False))}})


async def _revoke_certificate(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: RevokeCertificateInput!) { revokeCertificate(input: $i) "
            "{ errors { field message code } } }",
            {"i": {"certificateId": gid("Certificate", await _certificate_of_a(w, issued=True)), "reason": "信息有误"}})


async def _mark_notifications_read(w: World) -> tuple[str, dict[str, Any]]:
    from youthlink.domain import notifications

    actor = w.actors.get(w.trying)
    ids: list[str] = []
    if actor is not None:
        async with w.db.unit_of_work() as session:
            await notifications.notify(session, kind="test", payload={}, account_id=actor.account_id)
        async with w.db.read() as session:
            from youthlink.db.models import Notification

            rows = await session.scalars(select(Notification.id).where(
                Notification.recipient_account_id == actor.account_id))
            ids = [gid("Notification", i) for i in rows]
    return ("mutation($i: MarkNotificationsReadInput!) { markNotificationsRead(input: $i) "
            "{ errors { field message code } } }", {"i": {"ids": ids}})


async def _set_notification_preferences(w: World) -> tuple[str, dict[str, Any]]:
    return ("mutation($i: SetNotificationPreferencesInput!) { setNotificationPreferences(input: $i) "
            "{ errors { field message code } } }", {"i": {"channels": [], "muteReminders": True}})


async def _call_up(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task()
    return ("mutation($i: CallUpTeamInput!) { callUpTeam(input: $i) { errors { field message code } } }",
            {"i": {"teamId": gid("Team", w.team.id), "taskId": gid("Task", task.id), "quota": 1}})


async def _record_outcome(w: World) -> tuple[str, dict[str, Any]]:
    async with w.db.read() as session:
        beach = await session.scalar(select(Project.id).where(Project.name == "海洋净滩"))
    w.made += 1
    task = await factories.task(w.db, w.city, starts_in=-timedelta(days=w.made), hours=2, project_id=beach)
    return ("mutation($i: RecordServiceOutcomeInput!) { recordServiceOutcome(input: $i) "
            "{ errors { field message code } } }",
            {"i": {"taskId": gid("Task", task.id), "litter": [{"category": "PLASTIC", "kg": 3.5}]}})


# Queries that return personal data: "allowed" means the data comes back.

VOLUNTEER_PHONE = "query($id: ID!) { node(id: $id) { ... on Volunteer { phone phoneMasked } } }"


async def _volunteer_a(w: World) -> tuple[str, dict[str, Any]]:
    assert w.a.volunteer_id is not None
    return VOLUNTEER_PHONE, {"id": gid("Volunteer", w.a.volunteer_id)}


def _sees_volunteer(body: dict[str, Any], w: World) -> bool:
    return body.get("data", {}).get("node") is not None


def _sees_full_phone(body: dict[str, Any], w: World) -> bool:
    node = body.get("data", {}).get("node")
    return node is not None and "*" not in node["phone"]


async def _roster(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task()
    await w.signup_of_a(task)
    async with w.db.unit_of_work() as session:
        await signups.add_participant(session, w.city, task.id, w.b.volunteer_id)  # type: ignore[arg-type]
    return operation("TaskRoster"), {"id": gid("Task", task.id)}


def _sees_whole_roster(body: dict[str, Any], w: World) -> bool:
    node = (body.get("data") or {}).get("node")
    return node is not None and node["signups"]["totalCount"] == 2 and node["checkInCode"] is not None


async def _me(w: World) -> tuple[str, dict[str, Any]]:
    return operation("Me"), {}


async def _volunteers(w: World) -> tuple[str, dict[str, Any]]:
    return "query { volunteers(first: 5) { totalCount edges { node { phone } } } }", {}


async def _city(w: World) -> tuple[str, dict[str, Any]]:
    return operation("CityOverview"), {"from": "2026-01-01", "to": "2026-12-31"}


async def _invite(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task(mode=AssignmentMode.MATCHED)
    return ("mutation($t: ID!, $v: [ID!]!) { inviteVolunteers(input: {taskId: $t, volunteerIds: $v}) "
            "{ invited errors { field message code } } }",
            {"t": gid("Task", task.id), "v": [gid("Volunteer", w.b.volunteer_id)]})  # type: ignore[arg-type]


async def _mark_no_show(w: World) -> tuple[str, dict[str, Any]]:
    signup_id = await w.signup_of_a(await w.task(past=True, mode=AssignmentMode.MATCHED))
    return ("mutation($s: ID!) { markNoShow(input: {signupId: $s}) { errors { field message code } } }",
            {"s": gid("Signup", signup_id)})


async def _set_match_radius(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task(mode=AssignmentMode.MATCHED)
    return ("mutation($t: ID!) { setMatchRadius(input: {taskId: $t, radiusKm: 5}) { errors { field message code } } }",
            {"t": gid("Task", task.id)})


async def _recommended_volunteers(w: World) -> tuple[str, dict[str, Any]]:
    task = await w.task(mode=AssignmentMode.MATCHED)
    return "query($t: ID!) { recommendedVolunteers(taskId: $t) { volunteerId name } }", {"t": gid("Task", task.id)}


X_OR_CITY = frozenset(ADMINS_OF_X)
CELLS = [
    Cell("registerVolunteer", frozenset(EVERYONE), _register),
    Cell("login", frozenset(EVERYONE), _login),
    Cell("logout", frozenset(LOGGED_IN), _logout),
    Cell("createTask", X_OR_CITY, _create_task),
    Cell("updateTask (X's task)", X_OR_CITY, _update_task),
    Cell("cancelTask (X's task)", X_OR_CITY, _cancel_task),
    Cell("requestMatching", X_OR_CITY, _request_matching),
    Cell("signUp", frozenset(VOLUNTEERS), _sign_up),
    Cell("cancelSignup (A's)", frozenset({"volunteer A", *ADMINS_OF_X}), _cancel),
    Cell("checkIn (A's)", frozenset({"volunteer A"}), _check_in),
    Cell("checkOut (A's)", frozenset({"volunteer A"}), _check_out),
    Cell("addParticipant", X_OR_CITY, _add_participant),
    Cell("recordServiceHours", X_OR_CITY, _record_hours),
    Cell("approveServiceRecords", X_OR_CITY, _approve),
    Cell("adjustServiceRecord", X_OR_CITY, _adjust),
    Cell("rejectServiceRecords", X_OR_CITY, _reject),
    Cell("requestCorrection (A's record)", frozenset({"volunteer A"}), _request_correction),
    Cell("decideCorrection", X_OR_CITY, _decide_correction),
    Cell("setAutoApproval (X)", X_OR_CITY, _set_auto_approval),
    Cell("requestCertificate (own hours at X)", frozenset(VOLUNTEERS), _request_certificate),
    Cell("issueCertificate", X_OR_CITY, _issue_certificate),
    Cell("revokeCertificate", X_OR_CITY, _revoke_certificate),
    Cell("markNotificationsRead (own)", frozenset(LOGGED_IN), _mark_notifications_read),
    Cell("setNotificationPreferences (own)", frozenset(LOGGED_IN), _set_notification_preferences),
    Cell("setIdCard", frozenset(VOLUNTEERS), _set_id_card),
    Cell("recordGuardianConsent", frozenset(VOLUNTEERS), _guardian_consent),
    Cell("createOrganization (under the city committee)", frozenset({"city admin"}), _create_affiliated_org),
    Cell("createOrganization (under X)", X_OR_CITY, _create_child_org),
    Cell("appointOrgAdmin (of X)", X_OR_CITY, _org_volunteer("appointOrgAdmin")),
    Cell("revokeOrgAdmin (of X)", X_OR_CITY, _org_volunteer("revokeOrgAdmin")),
    Cell("createTeam (in X)", X_OR_CITY, _create_team),
    Cell("addTeamMember (L's team)", frozenset({"team leader", *ADMINS_OF_X}), _team_volunteer("addTeamMember")),
    Cell("removeTeamMember (L's team)", frozenset({"team leader", *ADMINS_OF_X}),
         _team_volunteer("removeTeamMember")),
    Cell("appointTeamLeader (L's team)", X_OR_CITY, _team_volunteer("appointTeamLeader")),
    Cell("createProject (owned by X)", X_OR_CITY, _create_project),
    Cell("addProjectPartner (X's project)", X_OR_CITY, _add_partner),
    Cell("addProjectTeam (X's project)", X_OR_CITY, _add_project_team),
    Cell("inviteVolunteers (to X's task)", X_OR_CITY, _invite),
    Cell("callUpTeam (L's team, X's task)", X_OR_CITY, _call_up),
    Cell("markNoShow (A on X's task)", X_OR_CITY, _mark_no_show),
    Cell("setMatchRadius (X's task)", X_OR_CITY, _set_match_radius),
    Cell("recordServiceOutcome (X's clean-up)", X_OR_CITY, _record_outcome),
    Cell("query: volunteer A (node)", frozenset({"volunteer A", "team leader", *ADMINS_OF_X}), _volunteer_a,
         _sees_volunteer),
    Cell("query: volunteer A's full phone", frozenset({"volunteer A", *ADMINS_OF_X}), _volunteer_a,
         _sees_full_phone),
    Cell("query: task roster (X's task)", X_OR_CITY, _roster, _sees_whole_roster),
    Cell("query: viewer (Me)", frozenset(LOGGED_IN), _me),
    Cell("query: volunteers", frozenset({"team leader", "org X admin", "org Y admin", "city admin"}), _volunteers),
    # Everyone logged in gets figures: the city (city admins), their organizations (org admins), their own.
    Cell("query: cityStats", frozenset(LOGGED_IN), _city),
    Cell("query: recommendedVolunteers (X's task)", X_OR_CITY, _recommended_volunteers),
]


@pytest.fixture
async def world(db: Any, clean: None) -> World:
    org_x = await factories.organization(db, "温岭市社会治理志愿者联盟")
    org_y = await factories.organization(db, "温岭市医疗青年联合会")
    city, city_token = await factories.admin(db, Role.CITY_ADMIN, None)
    x_admin, x_token = await factories.admin(db, Role.ORG_ADMIN, org_x.name)
    y_admin, y_token = await factories.admin(db, Role.ORG_ADMIN, org_y.name)
    a, a_token = await factories.volunteer(db)
    b, b_token = await factories.volunteer(db)
    leader, leader_token = await factories.volunteer(db)
    assert a.volunteer_id and leader.volunteer_id
    async with db.unit_of_work() as session:
        team = await management.create_team(session, city, CreateTeam(organization_id=org_x.id, name="河小二先锋队"))
        await management.add_team_member(session, city, team.id, a.volunteer_id)
        await management.add_team_member(session, city, team.id, leader.volunteer_id)
        await management.appoint_team_leader(session, city, team.id, leader.volunteer_id)
    from youthlink.domain import accounts

    async with db.read() as session:
        assert leader.account_id is not None
        leader = await accounts.load_actor(session, leader.account_id)
    # A serves with X: a sign-up on one of X's tasks.
    world = World(db=db, actors={"volunteer A": a, "volunteer B": b, "team leader": leader, "org X admin": x_admin,
                                 "org Y admin": y_admin, "city admin": city},
                  tokens={"anonymous": None, "volunteer A": a_token, "volunteer B": b_token,
                          "team leader": leader_token, "org X admin": x_token, "org Y admin": y_token,
                          "city admin": city_token},
                  org_x=org_x, org_y=org_y, team=team, city=city)
    await world.signup_of_a(await world.task())
    return world


def outcome(body: dict[str, Any], cell: Cell, world: World) -> bool:
    """True when the actor was allowed; False when refused; anything else is a broken scenario."""
    if cell.passes is not None:
        if body.get("errors"):
            assert body["errors"][0]["extensions"]["code"] in REFUSALS, body
            return False
        return cell.passes(body, world)
    if body.get("errors"):
        assert body["errors"][0].get("extensions", {}).get("code") in REFUSALS, body
        return False
    payload = next(iter(body["data"].values()))
    if not isinstance(payload, dict) or "errors" not in payload:
        return True
    if not payload["errors"]:
        return True
    assert payload["errors"][0]["code"] in REFUSALS, (cell.name, payload["errors"])
    return False


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
async def test_permission_matrix(cell: Cell, world: World, gql: GraphQL) -> None:
    allowed = set()
    for actor in ACTORS:
        world.trying = actor
        query, variables = await cell.scenario(world)
        body = await gql(query, variables, token=world.tokens[actor], expect_errors=True)
        if outcome(body, cell, world):
            allowed.add(actor)
    assert allowed == set(cell.allowed), f"{cell.name}: allowed {sorted(allowed)}, expected {sorted(cell.allowed)}"


def test_every_mutation_is_in_the_matrix() -> None:
    mutation_type = build_schema()._schema.mutation_type
    assert mutation_type is not None
    covered = {c.name.split(" ")[0] for c in CELLS}
    missing = set(mutation_type.fields) - covered
    assert not missing, f"mutations missing from the permission matrix: {sorted(missing)}"


def render_table() -> str:
    header = "| operation | " + " | ".join(ACTORS) + " |"
    rule = "|---|" + "---|" * len(ACTORS)
    rows = [f"| {c.name} | " + " | ".join("✅" if a in c.allowed else "—" for a in ACTORS) + " |" for c in CELLS]
    return "\n".join([header, rule, *rows])


def test_the_readme_shows_this_matrix() -> None:
    text = README.read_text()
    start, end = "<!-- permissions:start -->", "<!-- permissions:end -->"
    assert start in text and end in text, "README.md lacks the permission table markers"
    shown = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert shown == render_table(), "README permission table is stale; paste tests/test_permissions.render_table()"


__all__ = ["Decimal", "parse"]
