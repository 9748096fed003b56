"""Recommendations, invitations and a task's distance limit, through GraphQL over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from tests import factories
from tests.conftest import GraphQL
from tests.test_matching_batch import add_task, add_volunteers, apply, run_batch
from tests.test_matching_waitlist import _token_of
from youthlink.db.models import AuditEntry
from youthlink.db.models.enums import AssignmentMode, Role, SignupStatus
from youthlink.db.models.tasks import TaskInvitation
from youthlink.graphql.ids import encode_id

RECOMMENDED_VOLUNTEERS = """
query Recommended($taskId: ID!, $first: Int) {
  recommendedVolunteers(taskId: $taskId, first: $first) {
    volunteerId name skills starLevel distanceKm score invited
    explanation { decision score factors { key points } }
  }
}"""
INVITE = """
mutation Invite($taskId: ID!, $ids: [ID!]!) {
  inviteVolunteers(input: {taskId: $taskId, volunteerIds: $ids}) {
    invited skipped { volunteerId code message } errors { field code message }
  }
}"""
RECOMMENDED_TASKS = """
query ForYou($first: Int) {
  recommendedTasks(first: $first) { task { id title distanceKm } score invited explanation { factors { key value } } }
}"""


async def test_recommended_volunteers_are_eligible_non_applicants_best_first(gql: GraphQL, db: Any,
                                                                            clean: None) -> None:
    # given an under-filled task asking for first aid, and volunteers near and far, fit and unfit
    _, token = await factories.admin(db)
    task = await add_task(db, slots=5, due=False, required_skills=["first_aid"])
    near = await add_volunteers(db, 1, skills=["first_aid"], home=(28.27, 121.61))
    nearer = await add_volunteers(db, 1, skills=["first_aid", "swimming"], home=(28.26, 121.61))
    applied = await add_volunteers(db, 1, skills=["first_aid"])
    unskilled = await add_volunteers(db, 1, skills=["swimming"])
    far = await add_volunteers(db, 1, skills=["first_aid"], home=(29.5, 121.61))  # beyond the 30 km default
    busy = await add_volunteers(db, 1, skills=["first_aid"])
    clashing = await add_task(db, slots=3, mode=AssignmentMode.FIRST_COME, due=False)
    await apply(db, task, applied)
    await apply(db, clashing, busy, status=SignupStatus.CONFIRMED)

    # when the organization asks for recommendations
    body = await gql(RECOMMENDED_VOLUNTEERS, {"taskId": encode_id("Task", task.id), "first": 10}, token=token)

    # then only the eligible volunteers who have not applied come back, the better score first, with no phone
    found = body["data"]["recommendedVolunteers"]
    assert [r["volunteerId"] for r in found] == [encode_id("Volunteer", nearer[0]), encode_id("Volunteer", near[0])]
    assert found[0]["score"] > found[1]["score"] and found[0]["distanceKm"] < found[1]["distanceKm"]
    assert found[0]["explanation"]["decision"] == "RECOMMENDED"
    assert abs(sum(f["points"] for f in found[0]["explanation"]["factors"]) - found[0]["score"]) < 0.01
    assert not {encode_id("Volunteer", v[0]) for v in (applied, unskilled, far, busy)} & {r["volunteerId"]
                                                                                           for r in found}


async def test_only_those_who_run_the_task_get_recommendations(gql: GraphQL, db: Any, clean: None) -> None:
    # given a task and a volunteer who does not run it
    task = await add_task(db, slots=2, due=False)
    _, token = await factories.volunteer(db)

    # when the volunteer asks for its recommended volunteers
    body = await gql(RECOMMENDED_VOLUNTEERS, {"taskId": encode_id("Task", task.id)}, token=token, expect_errors=True)

    # then it is refused at the top level, with a code
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_inviting_recommended_volunteers_is_idempotent_and_shows_in_their_for_you(gql: GraphQL, db: Any,
                                                                                       clean: None) -> None:
    # given a task, two eligible volunteers, one who already applied and one who lacks the skill
    _, admin_token = await factories.admin(db)
    task = await add_task(db, slots=4, due=False, required_skills=["first_aid"], starts_in=timedelta(days=6))
    other = await add_task(db, slots=4, due=False, starts_in=timedelta(days=2))  # sooner, asks nothing
    eligible = await add_volunteers(db, 2, skills=["first_aid"])
    applied = await add_volunteers(db, 1, skills=["first_aid"])
    unskilled = await add_volunteers(db, 1)
    await apply(db, task, applied)
    ids = [encode_id("Volunteer", v) for v in eligible + applied + unskilled]

    # when the organization invites them all, twice
    first = (await gql(INVITE, {"taskId": encode_id("Task", task.id), "ids": ids}, token=admin_token))
    second = (await gql(INVITE, {"taskId": encode_id("Task", task.id), "ids": ids}, token=admin_token))

    # then the eligible two are invited (once), and the others are skipped with a reason
    for body in (first, second):
        payload = body["data"]["inviteVolunteers"]
        assert payload["errors"] == [] and sorted(payload["invited"]) == sorted(ids[:2])
        assert {s["volunteerId"]: s["code"] for s in payload["skipped"]} == {
            ids[2]: "ALREADY_APPLIED", ids[3]: "MISSING_SKILLS"}
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(TaskInvitation)) == 2
        assert await session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.action == "task.invite")) == 2

    # and an invited volunteer's "for you" lists the invitation first, then the other task
    token = await _token_of(db, eligible[0])
    found = (await gql(RECOMMENDED_TASKS, {"first": 5}, token=token))["data"]["recommendedTasks"]
    assert [r["task"]["id"] for r in found] == [encode_id("Task", task.id), encode_id("Task", other.id)]
    assert [r["invited"] for r in found] == [True, False]
    assert found[0]["task"]["distanceKm"] == 0


async def test_for_you_leaves_out_what_the_volunteer_cannot_or_already_did_sign_up_for(gql: GraphQL, db: Any,
                                                                                      clean: None) -> None:
    # given a volunteer, and tasks: open, applied to, full first-come, clashing, skill-gated, distance-limited
    volunteer = await add_volunteers(db, 1, skills=["swimming"])
    token = await _token_of(db, volunteer[0])
    open_task = await add_task(db, slots=3, due=False, starts_in=timedelta(days=9))
    applied = await add_task(db, slots=3, due=False, starts_in=timedelta(days=10))
    full = await add_task(db, slots=1, due=False, mode=AssignmentMode.FIRST_COME, starts_in=timedelta(days=11))
    held = await add_task(db, slots=3, due=False, mode=AssignmentMode.FIRST_COME, starts_in=timedelta(days=12))
    clashing = await add_task(db, slots=3, due=False, starts_in=timedelta(days=12, hours=1))
    gated = await add_task(db, slots=3, due=False, required_skills=["first_aid"], starts_in=timedelta(days=13))
    limited = await add_task(db, slots=3, due=False, match_radius_km=1.0, at=(28.30, 121.61),
                             starts_in=timedelta(days=14))
    await apply(db, applied, volunteer)
    await apply(db, full, await add_volunteers(db, 1), status=SignupStatus.CONFIRMED)
    await apply(db, held, volunteer, status=SignupStatus.CONFIRMED)

    # when the volunteer opens "for you"
    found = (await gql(RECOMMENDED_TASKS, {}, token=token))["data"]["recommendedTasks"]

    # then only the open task is there
    assert [r["task"]["id"] for r in found] == [encode_id("Task", open_task.id)]
    assert {clashing.id, gated.id, limited.id}  # all made


async def test_a_distance_limit_is_set_by_the_organization_and_enforced_by_the_batch(gql: GraphQL, db: Any,
                                                                                    clean: None) -> None:
    # given a due task and two applicants, 1 and 6 km away
    _, admin_token = await factories.admin(db)
    _, city_token = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await add_task(db, slots=2)
    close = await add_volunteers(db, 1, home=(28.27, 121.61))
    distant = await add_volunteers(db, 1, home=(28.32, 121.61))
    await apply(db, task, close + distant)

    # when the organization limits the task to 5 km, and the batch runs
    mutation = """mutation Radius($taskId: ID!, $km: Float) {
      setMatchRadius(input: {taskId: $taskId, radiusKm: $km}) { task { matchRadiusKm } errors { code field } } }"""
    refused = await gql(mutation, {"taskId": encode_id("Task", task.id), "km": -1.0}, token=admin_token)
    limited = await gql(mutation, {"taskId": encode_id("Task", task.id), "km": 5.0}, token=admin_token)
    result = await run_batch(db)

    # then the distant applicant is rejected for the distance; the run is on record for the city office
    assert refused["data"]["setMatchRadius"]["errors"] == [{"code": "INVALID_RADIUS", "field": "radiusKm"}]
    assert limited["data"]["setMatchRadius"] == {"task": {"matchRadiusKm": 5.0}, "errors": []}
    assert result["confirmed"] == 1 and result["rejected"] == 1
    runs = await gql("{ matchingRuns(first: 5) { tasks applications confirmed rejected exact method filled "
                     "boundFilled score boundScore } }", token=city_token)
    (run,) = runs["data"]["matchingRuns"]
    assert run["exact"] and run["filled"] == run["boundFilled"] == 1 and run["score"] == run["boundScore"]
    assert (run["tasks"], run["applications"], run["confirmed"], run["rejected"]) == (1, 2, 1, 1)
    denied = await gql("{ matchingRuns { exact } }", token=admin_token, expect_errors=True)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
