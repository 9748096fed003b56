"""Database constraint violations that can reach a user, as domain errors with stable codes.

The services check these rules first; the constraints are the backstop under concurrency, and a
violation must still read as a clear refusal, never a 500.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from youthlink.errors import Conflict, DomainError, Invalid

KNOWN: dict[str, DomainError] = {
    "uq_signups_active_per_task": Conflict("ALREADY_SIGNED_UP", "已报名该任务", "taskId"),
    "ck_tasks_filled_within_slots": Conflict("TASK_FULL", "任务名额已满", "taskId"),
    "uq_service_records_signup_id": Conflict("ALREADY_RECORDED", "该报名已有服务记录", "signupId"),
    "uq_accounts_phone": Conflict("PHONE_TAKEN", "该手机号已注册", "phone"),
    "uq_volunteers_phone": Conflict("PHONE_TAKEN", "该手机号已注册", "phone"),
    "uq_volunteers_id_card_hash": Conflict("ID_CARD_TAKEN", "该身份证号已登记", "idCard"),
    "uq_organizations_name": Conflict("NAME_TAKEN", "名称已被使用", "name"),
    "uq_teams_organization_id_name": Conflict("NAME_TAKEN", "该组织下已有同名队伍", "name"),
    "uq_projects_name": Conflict("NAME_TAKEN", "名称已被使用", "name"),
}


def constraint_name(exc: IntegrityError) -> str | None:
    cause = getattr(exc.orig, "__cause__", None)
    return getattr(cause, "constraint_name", None) or getattr(exc.orig, "constraint_name", None)


def as_domain_error(exc: IntegrityError) -> DomainError:
    name = constraint_name(exc)
    known = KNOWN.get(name or "")
    if known is not None:
        return known
    return Invalid("CONSTRAINT_VIOLATION", "提交的数据不满足约束条件", None)
