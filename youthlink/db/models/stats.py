"""Statistics rollups: figures per calendar period and key, derived from the ledger and kept current by the
`stats.refresh` job.

Nothing here is a source of truth: every row can be recomputed from the ledger (approved records plus
adjustments) and the sign-ups, and the nightly `stats.rebuild` does exactly that and reports any difference.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, Integer, Numeric, SmallInteger, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base

# Stands for "none" in a rollup key: the whole city is one key.
NIL = uuid.UUID(int=0)


class StatsRollup(Base):
    """One bucket: a calendar period (month, quarter or year, in the city's calendar) × one key of a dimension:
    the city (key NIL), an organization with all its children, a town, a project or a team. Distinct counts
    (volunteers, tasks) do not add up across buckets, so each bucket holds its own, computed from the ledger;
    CityOverview for a period reads a few hundred rows by primary key."""

    __tablename__ = "stats_periods"
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    hours: Mapped[Decimal] = mapped_column(Numeric(14, 1))
    records: Mapped[int] = mapped_column(Integer)  # approved records
    attended: Mapped[int] = mapped_column(Integer)  # approved records of a task (the volunteer came)
    no_shows: Mapped[int] = mapped_column(Integer)
    tasks: Mapped[int] = mapped_column(Integer)  # tasks with approved hours
    volunteers: Mapped[int] = mapped_column(Integer)  # distinct volunteers with approved hours


class StatsVolunteers(Base):
    """The registered volunteers by the month they registered (city calendar) and their star level: what
    CityOverview's registered, new and star-level figures for a calendar period add up (a few hundred rows)
    instead of counting all volunteers. It holds the volunteers registered before `through`; those registered
    since are counted live (an index range). Recomputed whole by every `stats.refresh` (star levels change
    only with approved hours, which record one) and by the nightly `stats.rebuild`."""

    __tablename__ = "stats_volunteers"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    volunteers: Mapped[int] = mapped_column(Integer)
    through: Mapped[datetime] = mapped_column(DateTime(timezone=True))
