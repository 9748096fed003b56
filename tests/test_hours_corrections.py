"""Review and corrections through GraphQL over HTTP: the review queue, bulk rejection, a volunteer's
correction requests (accepted as an adjustment, or declined) and a record's full history."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.conftest import GraphQL
from tests.test_hours_ledger import credited_record, record_of
from youthlink.db.models.enums import RecordStatus
from youthlink.graphql.ids import encode_id

REQUEST = """
mutation Ask($input: RequestCorrectionInput!) {
  requestCorrection(input: $input) { correctionRequest { id status hours what why } errors { field message code } }
}"""
DECIDE = """
mutation Decide($input: DecideCorrectionInput!) {
  decideCorrection(input: $input) {
    correctionRequest { id status decisionReason adjustmentId decidedAt }
    errors { field message code }
  }
}"""
HISTORY = """
query History($id: ID!) {
  serviceRecordHistory(recordId: $id) { at action actorName hours reason details }
  correctionRequests(recordId: $id) { id status hours adjustmentId decisionReason }
}"""
QUEUE = """
query Queue($org: ID!, $dueSoon: Boolean!) {
  serviceRecordsToReview(organizationId: $org, dueSoon: $dueSoon, first: 10) {
    totalCount
    edges { node { id hours status activityName serviceDate place content personInCharge dueOn dueSoon late
                   overlapping organization { name } volunteer { id } } }
  }
}"""
REJECT = """
mutation Reject($input: RejectServiceRecordsInput!) {
  rejectServiceRecords(input: $input) { records { id status rejectedReason } errors { field message code } }
}"""


async def test_a_correction_requested_accepted_declined_and_the_full_history(gql: GraphQL, db: Any,
                                                                           clean: None) -> None:
    # given a 3-hour record, approved by the organization through the console's operation
    admin, admin_token = await factories.admin(db)
    volunteer, token = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    record = await credited_record(db, admin, volunteer.volunteer_id)
    record_id = encode_id("ServiceRecord", record.id)
    approved = (await gql("ApproveServiceRecords", {"ids": [record_id]}, token=admin_token))["data"]
    assert approved["approveServiceRecords"]["errors"] == []

    # when the volunteer asks for half an hour more (they left later than the scan says)
    asked = (await gql(REQUEST, {"input": {"recordId": record_id, "hours": 0.5, "what": "签退时间",
                                           "why": "签退时网络故障，实际晚走半小时"}}, token=token))["data"]
    request = asked["requestCorrection"]
    assert request["errors"] == [] and request["correctionRequest"]["status"] == "OPEN"
    # (a second one while the first is open is refused)
    dup = (await gql(REQUEST, {"input": {"recordId": record_id, "hours": 1, "what": "x时长", "why": "再次申请"}},
                     token=token))["data"]["requestCorrection"]
    assert [e["code"] for e in dup["errors"]] == ["CORRECTION_PENDING"]

    # and the organization accepts it, with its reason
    accepted = (await gql(DECIDE, {"input": {"requestId": request["correctionRequest"]["id"], "accept": True,
                                             "reason": "核对现场签到表属实"}}, token=admin_token))["data"]
    decision = accepted["decideCorrection"]
    assert decision["errors"] == [] and decision["correctionRequest"]["status"] == "ACCEPTED"
    assert decision["correctionRequest"]["adjustmentId"]

    # and a later request (-0.3 h) is declined, with a reason
    second = (await gql(REQUEST, {"input": {"recordId": record_id, "hours": -0.3, "what": "时长",
                                            "why": "我记得早走了一会儿"}}, token=token))["data"]["requestCorrection"]
    declined = (await gql(DECIDE, {"input": {"requestId": second["correctionRequest"]["id"], "accept": False,
                                             "reason": "签到记录无误"}}, token=admin_token))["data"]
    assert declined["decideCorrection"]["correctionRequest"]["status"] == "DECLINED"

    # then the original record stays exactly as it was, and the total is the ledger's sum (3 + 0.5)
    row = await record_of(db, record.id)
    assert row.status is RecordStatus.APPROVED and float(row.hours) == 3.0
    me = (await gql("Me", token=token))["data"]["viewer"]["volunteer"]
    assert me["totalHours"] == 3.5
    assert me["serviceRecords"]["edges"][0]["node"]["hours"] == 3.0

    # and the record's full history reads in order, with who did what and why
    for viewer in (token, admin_token):
        body = (await gql(HISTORY, {"id": record_id}, token=viewer))["data"]
        events = body["serviceRecordHistory"]
        assert [e["action"] for e in events] == [
            "hours.credit", "hours.approve", "hours.correction_request", "hours.adjust",
            "hours.correction_request", "hours.correction_decline",
        ]
        assert events[0]["actorName"] is None and events[1]["actorName"] == "管理员"
        assert events[2]["details"]["why"] == "签退时网络故障，实际晚走半小时" and events[2]["hours"] == 0.5
        assert (events[3]["hours"], events[3]["reason"]) == (0.5, "核对现场签到表属实")
        assert events[5]["reason"] == "签到记录无误"
        assert [(c["status"], c["hours"]) for c in body["correctionRequests"]] == [("ACCEPTED", 0.5),
                                                                                  ("DECLINED", -0.3)]

    # and the volunteer was told of both decisions
    inbox = (await gql("{ notifications { items { kind payload } } }", token=token))["data"]["notifications"]
    decided = [n["payload"]["status"] for n in inbox["items"] if n["kind"] == "hours.correction_decided"]
    assert sorted(decided) == ["ACCEPTED", "DECLINED"]

    # and nobody else can read the history
    _, stranger = await factories.volunteer(db)
    body = await gql(HISTORY, {"id": record_id}, token=stranger, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "RECORD_NOT_FOUND"


async def test_corrections_only_for_ones_own_approved_records(gql: GraphQL, db: Any, clean: None) -> None:
    admin, _ = await factories.admin(db)
    volunteer, token = await factories.volunteer(db)
    _, other = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    record = await credited_record(db, admin, volunteer.volunteer_id)
    ask = {"input": {"recordId": encode_id("ServiceRecord", record.id), "hours": 1, "what": "时长", "why": "漏记"}}

    pending = (await gql(REQUEST, ask, token=token))["data"]["requestCorrection"]
    assert [e["code"] for e in pending["errors"]] == ["RECORD_NOT_APPROVED"]
    someone_else = (await gql(REQUEST, ask, token=other))["data"]["requestCorrection"]
    assert [e["code"] for e in someone_else["errors"]] == ["FORBIDDEN"]


async def test_the_review_queue_and_bulk_rejection(gql: GraphQL, db: Any, clean: None) -> None:
    # given two pending records of the alliance
    admin, admin_token = await factories.admin(db)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    records = [await credited_record(db, admin, volunteer.volunteer_id, days_ago=d) for d in (2, 1)]
    org = encode_id("Organization", (await factories.organization(db)).id)

    # when the admin opens the review queue
    queue = (await gql(QUEUE, {"org": org, "dueSoon": False}, token=admin_token))["data"]["serviceRecordsToReview"]

    # then both show with the facts the rules require, oldest deadline first
    assert queue["totalCount"] == 2
    first = queue["edges"][0]["node"]
    assert first["id"] == encode_id("ServiceRecord", records[0].id)
    assert first["activityName"] == "海洋净滩 · 石塘" and first["place"] == "石塘镇金沙滩"
    assert first["personInCharge"] == "管理员" and first["organization"]["name"] == "温岭市社会治理志愿者联盟"
    assert first["dueOn"] == records[0].due_on.isoformat()
    assert first["serviceDate"] == records[0].service_date.isoformat()
    assert not first["late"] and not first["overlapping"] and first["dueSoon"] is False
    # (nothing is due within the warning window yet)
    soon = (await gql(QUEUE, {"org": org, "dueSoon": True}, token=admin_token))["data"]["serviceRecordsToReview"]
    assert soon["totalCount"] == 0

    # when both are rejected in one call, with a reason
    ids = [e["node"]["id"] for e in queue["edges"]]
    body = (await gql(REJECT, {"input": {"ids": ids, "reason": "活动取消"}}, token=admin_token))["data"]
    result = body["rejectServiceRecords"]

    # then both are rejected with the reason, and the queue is empty
    assert result["errors"] == [] and {r["status"] for r in result["records"]} == {"REJECTED"}
    assert {r["rejectedReason"] for r in result["records"]} == {"活动取消"}
    queue = (await gql(QUEUE, {"org": org, "dueSoon": False}, token=admin_token))["data"]["serviceRecordsToReview"]
    assert queue["totalCount"] == 0
    # and a reason is required
    body = (await gql(REJECT, {"input": {"ids": ids, "reason": ""}}, token=admin_token))["data"]
    assert body["rejectServiceRecords"]["errors"][0]["field"] == "reason"

    # and another organization's admin cannot open the queue
    _, outsider = await factories.admin(db, org_name="温岭市医疗青年联合会")
    refused = await gql(QUEUE, {"org": org, "dueSoon": False}, token=outsider, expect_errors=True)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
