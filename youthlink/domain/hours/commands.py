"""Validated commands of the ledger (built by the GraphQL / REST adapters, like youthlink.domain.inputs)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from youthlink.domain.inputs import Command, rule_error

MAX_BULK = 500


def _nonzero(value: Decimal) -> Decimal:
    if value == 0:
        raise ValueError("调整时长不能为 0")
    return value


class RejectServiceRecords(Command):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK)
    reason: str = Field(min_length=2, max_length=256)


class RequestCorrection(Command):
    record_id: uuid.UUID
    hours: Decimal = Field(ge=Decimal("-24"), le=Decimal("24"), decimal_places=1)
    what: str = Field(min_length=2, max_length=500)
    why: str = Field(min_length=2, max_length=1000)

    _hours = field_validator("hours")(_nonzero)


class DecideCorrection(Command):
    request_id: uuid.UUID
    accept: bool
    reason: str = Field(min_length=2, max_length=1000)
    # The organization may accept a different amount than asked for; it defaults to the request's.
    hours: Decimal | None = Field(default=None, ge=Decimal("-24"), le=Decimal("24"), decimal_places=1)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: Decimal | None) -> Decimal | None:
        return None if value is None else _nonzero(value)


class SetAutoApproval(Command):
    organization_id: uuid.UUID
    days: int | None = Field(default=None, ge=1, le=60)


class RequestCertificate(Command):
    organization_id: uuid.UUID
    period_from: date | None = None
    period_to: date | None = None

    @model_validator(mode="after")
    def _order(self) -> RequestCertificate:
        if self.period_from and self.period_to and self.period_to < self.period_from:
            raise rule_error("INVALID_PERIOD", "结束日期不能早于开始日期", "periodTo")
        return self


class RevokeCertificate(Command):
    certificate_id: uuid.UUID
    reason: str = Field(min_length=2, max_length=500)
