"""A batch's decisions, kept per task round (MatchingDecision) instead of written to every application's row.

`entries` packs one fixed-width record per decided application, sorted by sign-up id (a binary search finds
one): the decision and its reason, the score, the six factors and the facts behind them, the same breakdown an
organization reads in `matchExplanation`. Big-endian, so the bytes mean the same on any machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import MatchingDecision
from youthlink.db.models.tasks import MatchingRun
from youthlink.domain.matching import scores

CONFIRMED, WAITLISTED, REJECTED = 1, 2, 3
DECISIONS = {CONFIRMED: "CONFIRMED", WAITLISTED: "WAITLISTED", REJECTED: "REJECTED"}
REASONS = ("SELECTED", "TASK_FULL", "TIME_CONFLICT", "MISSING_SKILLS", "TOO_YOUNG", "GUARDIAN_CONSENT_REQUIRED",
           "NO_HOME_LOCATION", "TOO_FAR")
REASON = {code: i + 1 for i, code in enumerate(REASONS)}
NO_SCORE = -1  # units of a rejected application: it breaks a rule, so it has no score
NO_DISTANCE = -1  # km of a volunteer without a home recorded

ENTRY = np.dtype([
    ("id", "V16"),  # the sign-up's id, 16 bytes as in a UUID
    ("decision", "u1"), ("reason", "u1"),
    ("units", ">i4"),  # score in thousandths of a point, or NO_SCORE
    ("factors", ">i2", (len(scores.FACTORS),)),  # permille
    ("km", ">i4"),  # hundredths of a kilometre, or NO_DISTANCE
    ("hours", ">i4"),  # tenths of an hour, approved in the fairness window
    ("attended", ">i4"), ("no_shows", ">i4"),
    ("member", "u1"),  # scores.MEMBER_*
])
assert ENTRY.itemsize == 51  # the database checks octet_length(entries) = 51 * applications


@dataclass(frozen=True)
class Record:
    """One round's decisions, unpacked."""

    task_id: uuid.UUID
    round: int
    run_id: uuid.UUID
    decided_at: datetime
    weights: list[float]
    entries: NDArray[np.void]

    def find(self, signup_id: uuid.UUID) -> Any | None:
        """The entry of one sign-up (a binary search over the sorted ids), or None."""
        key = np.frombuffer(signup_id.bytes, "V16")
        at = int(np.searchsorted(self.entries["id"], key[0]))
        if at < self.entries.shape[0] and self.entries["id"][at] == key[0]:
            return self.entries[at]
        return None


def unpack(raw: bytes) -> NDArray[np.void]:
    return np.frombuffer(raw, ENTRY)


async def records(session: AsyncSession, keys: Sequence[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], Record]:
    """The decisions of these (task, round) pairs that a batch decided, with their run's weights."""
    if not keys:
        return {}
    rows = await session.execute(
        select(MatchingDecision.task_id, MatchingDecision.round, MatchingDecision.run_id,
               MatchingDecision.decided_at, MatchingDecision.entries, MatchingRun.weights)
        .join(MatchingRun, MatchingRun.id == MatchingDecision.run_id)
        .where(tuple_(MatchingDecision.task_id, MatchingDecision.round).in_(list(keys)))
    )
    return {
        (r.task_id, r.round): Record(r.task_id, r.round, r.run_id, r.decided_at,
                                     [float(r.weights[name]) for name in scores.FACTORS], unpack(r.entries))
        for r in rows
    }


@dataclass(frozen=True)
class Decided:
    """A sign-up's matching decision as people read it: its score, explanation and when it was made."""

    score: Decimal | None
    explanation: dict[str, Any] | None
    decided_at: datetime | None


def needs_record(row: Any) -> bool:
    """Whether the sign-up's decision is in its round's MatchingDecision (not made for it alone)."""
    return row.match_explanation is None


def decided(row: Any, record: Record | None) -> Decided:
    """The decision of a sign-up row: its own (a promotion), else its batch's entry in `record`, if any."""
    if not needs_record(row) or record is None:
        return Decided(row.match_score, row.match_explanation, row.decided_at)
    entry = record.find(row.id)
    if entry is None:
        return Decided(None, None, row.decided_at)
    return Decided(score(entry), explanation(record, entry), row.decided_at or record.decided_at)


async def of_signups(session: AsyncSession, rows: Sequence[Any]) -> dict[uuid.UUID, Decided]:
    """The decisions of these sign-up rows, reading each round's record once."""
    found = await records(session, list({(r.task_id, r.matching_round) for r in rows if needs_record(r)}))
    return {r.id: decided(r, found.get((r.task_id, r.matching_round))) for r in rows}


def score(entry: Any) -> Decimal | None:
    units = int(entry["units"])
    return None if units == NO_SCORE else scores.points(units)


def explanation(record: Record, entry: Any) -> dict[str, Any]:
    """The entry as a stored explanation (the shape scores.explanation gives a promotion)."""
    body: dict[str, Any] = {"v": scores.EXPLANATION_VERSION, "run": str(record.run_id),
                            "decision": DECISIONS[int(entry["decision"])], "reason": REASONS[int(entry["reason"]) - 1]}
    if int(entry["units"]) != NO_SCORE:
        km = int(entry["km"])
        body.update(
            factors=[int(f) for f in entry["factors"]], weights=record.weights,
            facts={"km": None if km == NO_DISTANCE else round(km / 100, 2), "hours": round(int(entry["hours"]) / 10, 1),
                   "attended": int(entry["attended"]), "noShows": int(entry["no_shows"]),
                   "member": scores.MEMBERSHIP_NAMES[int(entry["member"])]},
        )
    return body
