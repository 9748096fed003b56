"""Candidates: pairs of (volunteer, task) checked against the hard rules and scored, set-based.

The rows come from PostgreSQL in a few set-based queries (the big one, a batch's applications, as a binary
COPY read straight into NumPy); every rule and factor is then computed for all pairs at once:

    skills          bit masks over the batch's skill vocabulary: (volunteer & task) == task
    age, consent    age on the task's (UTC) start date against the task's minimum and the age of majority
    distance        haversine from the volunteer's home; the task's radius, when set, is a hard limit
    time            a pair clashing with a sign-up the volunteer already holds is not a candidate

No Python loop runs over pairs; loops run over tasks, volunteers or memberships (each at most tens of
thousands), where building a bit mask or an index is simpler than any vectorized form.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import Settings
from youthlink.db.models import Signup, Task
from youthlink.db.models.enums import SLOT_HOLDING, SignupStatus
from youthlink.db.models.tasks import signup_status
from youthlink.domain.accounts import ADULT_AGE
from youthlink.domain.geo import EARTH_RADIUS_KM
from youthlink.domain.hours import ledger_entries
from youthlink.domain.matching import scores
from youthlink.domain.matching.solver import by_key, overlapping

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]
UNIX_2000 = 946_684_800  # PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC

# Eligibility, in the order the rules are checked (the first failing one is the reason).
OK, MISSING_SKILLS, TOO_YOUNG, GUARDIAN_CONSENT_REQUIRED, NO_HOME_LOCATION, TOO_FAR, TIME_CONFLICT = range(7)
REASON_CODES = ("", "MISSING_SKILLS", "TOO_YOUNG", "GUARDIAN_CONSENT_REQUIRED", "NO_HOME_LOCATION", "TOO_FAR",
                "TIME_CONFLICT")


@asynccontextmanager
async def side_session(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session on another connection to the same database, for reads that run alongside `session`'s."""
    connection = await session.connection()
    async with AsyncSession(connection.engine) as side:
        yield side


def seconds(value: datetime) -> int:
    return int(value.timestamp())


def among(column: Any, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    """`column = ANY(:ids)`: one array parameter however many ids (asyncpg takes at most 32,767 parameters)."""
    return column == any_(bindparam(None, list(ids), type_=ARRAY(PG_UUID(as_uuid=True))))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Tasks:
    """The tasks of a batch (or of a recommendation), indexed 0..n-1 in `ids` order."""

    ids: list[uuid.UUID]
    rows: list[Task]
    start: Ints
    end: Ints
    capacity: Ints
    lat: Floats
    lng: Floats
    radius_km: Floats  # NaN: no limit
    min_age: Ints  # -1: none
    start_day: Ints  # yyyymmdd of the UTC start date
    start_year: Ints
    skill_mask: NDArray[np.uint64]  # (tasks, words)
    skills_asked: Flags
    team: list[uuid.UUID | None]
    project: list[uuid.UUID | None]
    opened: Ints
    closes: Ints  # the sign-up deadline, or the start

    @property
    def size(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Roster:
    """Volunteers indexed 0..n-1 in `ids` order: all that memberships and held slots need of them."""

    ids: list[uuid.UUID]
    index: dict[uuid.UUID, int]

    @classmethod
    def of(cls, ids: Sequence[uuid.UUID]) -> Roster:
        listed = list(ids)
        return cls(listed, {vid: i for i, vid in enumerate(listed)})


@dataclass(frozen=True)
class Volunteers(Roster):
    birth_day: Ints  # mmdd
    birth_year: Ints
    consent: Flags
    lat: Floats  # NaN: no home recorded
    lng: Floats
    skill_mask: NDArray[np.uint64]
    recent_hours: Floats
    attended: Ints
    no_shows: Ints

    @property
    def size(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Pairs:
    """Pairs to evaluate: task index, volunteer index and when the volunteer applied (seconds)."""

    task: Ints
    volunteer: Ints
    applied: Ints


@dataclass(frozen=True)
class Evaluation:
    """Per pair: the first rule it breaks (OK if none), the facts behind its factors, factors and score."""

    reason: NDArray[np.int8]
    distance_km: Floats
    membership: Ints
    permille: NDArray[np.int16]  # (pairs, 6)
    units: Ints

    @property
    def candidate(self) -> Flags:
        ok: Flags = self.reason == OK
        return ok


def vocabulary(tasks: Sequence[Task]) -> dict[str, int]:
    """Bit positions for every skill the tasks ask for."""
    skills = sorted({skill for task in tasks for skill in task.required_skills})
    return {skill: i for i, skill in enumerate(skills)}


def skill_masks(skill_lists: Sequence[Sequence[str]], vocab: dict[str, int]) -> NDArray[np.uint64]:
    words = max(1, (len(vocab) + 63) // 64)
    masks = np.zeros((len(skill_lists), words), np.uint64)
    for row, skills in enumerate(skill_lists):
        for skill in skills:
            bit = vocab.get(skill)
            if bit is not None:
                masks[row, bit // 64] |= np.uint64(1 << (bit % 64))
    return masks


def task_table(rows: Sequence[Task], vocab: dict[str, int], now: datetime) -> Tasks:
    def column(values: list[Any], dtype: Any) -> Any:
        return np.array(values, dtype=dtype)

    return Tasks(
        ids=[t.id for t in rows], rows=list(rows),
        start=column([seconds(t.starts_at) for t in rows], np.int64),
        end=column([seconds(t.ends_at) for t in rows], np.int64),
        capacity=column([max(t.slots - t.filled_slots, 0) for t in rows], np.int64),
        lat=column([t.lat for t in rows], np.float64), lng=column([t.lng for t in rows], np.float64),
        radius_km=column([np.nan if t.match_radius_km is None else t.match_radius_km for t in rows], np.float64),
        min_age=column([-1 if t.min_age is None else t.min_age for t in rows], np.int64),
        start_day=column([t.starts_at.astimezone(UTC).month * 100 + t.starts_at.astimezone(UTC).day for t in rows],
                         np.int64),
        start_year=column([t.starts_at.astimezone(UTC).year for t in rows], np.int64),
        skill_mask=skill_masks([t.required_skills for t in rows], vocab),
        skills_asked=column([bool(t.required_skills) for t in rows], np.bool_),
        team=[t.team_id for t in rows], project=[t.project_id for t in rows],
        opened=column([seconds(t.created_at) for t in rows], np.int64),
        closes=column([seconds(t.signup_deadline or t.starts_at) for t in rows], np.int64),
    )


LedgerFacts = list[tuple[int, float, int]]  # (volunteer index, recent hours, attended services)


async def load_volunteers(session: AsyncSession, roster: Roster, vocab: dict[str, int], now: datetime,
                          settings: Settings, ledger: Awaitable[LedgerFacts] | None = None) -> Volunteers:
    """The volunteers' own facts, and their recent hours, attendance and no-shows, in four queries (`ledger`: the
    ledger's facts, when another connection is reading them already)."""
    ids, index = roster.ids, roster.index
    n = len(ids)
    birth_day, birth_year = np.zeros(n, np.int64), np.zeros(n, np.int64)
    consent = np.zeros(n, np.bool_)
    lat, lng = np.full(n, np.nan), np.full(n, np.nan)
    skill_lists: list[Sequence[str]] = [[] for _ in range(n)]
    recent, attended, no_shows = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
    if n:
        driver = await driver_connection(session)
        for vid, birth, consented, home_lat, home_lng, skills in await driver.fetch(
            "SELECT id, birth_date, guardian_consent_at IS NOT NULL, home_lat, home_lng, skills"
            " FROM volunteers WHERE id = ANY($1::uuid[])", ids,
        ):
            i = index[vid]
            birth_day[i], birth_year[i] = birth.month * 100 + birth.day, birth.year
            consent[i] = consented
            if home_lat is not None and home_lng is not None:
                lat[i], lng[i] = home_lat, home_lng
            skill_lists[i] = skills
        window = now - timedelta(days=settings.matching_reliability_days)
        for vid, count in await session.execute(
            select(Signup.volunteer_id, func.count()).join(Task, Task.id == Signup.task_id)
            .where(Signup.recorded_status == SignupStatus.NO_SHOW, among(Signup.volunteer_id, ids),
                   Task.starts_at >= window)
            .group_by(Signup.volunteer_id)
        ):
            no_shows[index[vid]] = int(count)
        for i, hours, records in await (ledger or ledger_facts(session, roster, now, settings)):
            recent[i], attended[i] = hours, records
    return Volunteers(ids=ids, index=index, birth_day=birth_day, birth_year=birth_year, consent=consent, lat=lat,
                      lng=lng, skill_mask=skill_masks(skill_lists, vocab), recent_hours=recent, attended=attended,
                      no_shows=no_shows)


async def ledger_facts(session: AsyncSession, roster: Roster, now: datetime, settings: Settings) -> LedgerFacts:
    """(index into the roster, recent hours, attended services) of the volunteers with any, in one pass over the
    ledger (the one definition of hours)."""
    ids, index = roster.ids, roster.index
    entries = ledger_entries().subquery("entries")
    since = now - timedelta(days=settings.matching_fairness_days)
    window = now - timedelta(days=settings.matching_reliability_days)
    connection = await session.connection()  # Core rows: no ORM result processing for tens of thousands of them
    return [
        (index[vid], float(hours or 0), int(records)) for vid, hours, records in await connection.execute(
            select(entries.c.volunteer_id, func.sum(entries.c.hours).filter(entries.c.started_at >= since),
                   func.count().filter(entries.c.is_record))
            .where(among(entries.c.volunteer_id, ids), entries.c.started_at >= min(since, window))
            .group_by(entries.c.volunteer_id)
        )
    ]


@dataclass(frozen=True)
class Memberships:
    """(volunteer index, task index) pairs where the volunteer is in the task's team / its project's teams."""

    team_keys: Ints
    project_keys: Ints


TEAM_MEMBERS_SQL = "SELECT team_id, volunteer_id FROM team_members WHERE team_id = ANY($1::uuid[])"
PROJECT_MEMBERS_SQL = """
    SELECT p.project_id, m.volunteer_id FROM project_teams p JOIN team_members m ON m.team_id = p.team_id
    WHERE p.project_id = ANY($1::uuid[])
"""


async def load_memberships(session: AsyncSession, tasks: Tasks, volunteers: Roster) -> Memberships:
    width = max(tasks.size, 1)
    driver = await driver_connection(session)

    async def keys(owners: list[uuid.UUID | None], members_sql: str) -> Ints:
        """Keys of each (owner, member) pair for every task of the owner, the batch's volunteers' only."""
        owned = pd.DataFrame({"owner": owners, "task": np.arange(len(owners))}).dropna()
        if owned.empty:
            return np.zeros(0, np.int64)
        links = await driver.fetch(members_sql, list(set(owned["owner"])))
        members = pd.DataFrame({"owner": [owner for owner, _ in links],
                                "volunteer": [volunteers.index.get(vid, -1) for _, vid in links]})
        pairs = members[members["volunteer"] >= 0].merge(owned, on="owner")
        return np.unique(pairs["volunteer"].to_numpy(np.int64) * width + pairs["task"].to_numpy(np.int64))

    return Memberships(team_keys=await keys(tasks.team, TEAM_MEMBERS_SQL),
                       project_keys=await keys(tasks.project, PROJECT_MEMBERS_SQL))


@dataclass(frozen=True)
class Held:
    """Slot-holding sign-ups of the volunteers, as intervals: the time rule's other side."""

    volunteer: Ints
    start: Ints
    end: Ints


# The tasks in the window first, then their slot-holding sign-ups by the partial index on (task_id) (a plain join
# had PostgreSQL read every slot-holding sign-up of the city); the statuses are written out so the planner can tell
# the index applies. Times are whole seconds since the epoch, truncated, as seconds() counts them.
HELD_SQL = f"""
    SELECT s.volunteer_id, trunc(extract(epoch FROM t.starts_at))::int8, trunc(extract(epoch FROM t.ends_at))::int8
    FROM signups s JOIN tasks t ON t.id = s.task_id
    WHERE s.status IN ({", ".join(f"'{status.value}'" for status in SLOT_HOLDING)})
      AND s.task_id = ANY(ARRAY(SELECT id FROM tasks WHERE starts_at < $1 AND ends_at > $2))
"""


async def load_held(session: AsyncSession, volunteers: Roster, starts: datetime, ends: datetime,
                    only: Sequence[uuid.UUID] | None = None) -> Held:
    """Intervals of tasks in [starts, ends) the volunteers hold a slot of (a few tasks, by a partial index)."""
    driver = await driver_connection(session)
    if only is None:
        rows = await driver.fetch(HELD_SQL, ends, starts)
    else:
        rows = await driver.fetch(HELD_SQL + " AND s.volunteer_id = ANY($3::uuid[])", ends, starts, list(only))
    at = np.array([volunteers.index.get(vid, -1) for vid, _, _ in rows], np.int64)
    intervals = np.array([(start, end) for _, start, end in rows], np.int64).reshape(-1, 2)
    mine = at >= 0
    return Held(at[mine], intervals[mine, 0], intervals[mine, 1])


@dataclass(frozen=True)
class Places:
    """Points with the trigonometry the haversine needs, computed once per point (not once per pair)."""

    cos_lat: Floats
    sin_half_lat: Floats
    cos_half_lat: Floats
    sin_half_lng: Floats
    cos_half_lng: Floats

    @classmethod
    def of(cls, lat: Floats, lng: Floats) -> Places:
        phi, lam = np.radians(lat), np.radians(lng)
        return cls(np.cos(phi), np.sin(phi / 2), np.cos(phi / 2), np.sin(lam / 2), np.cos(lam / 2))


def haversine_km(a: Places, i: Ints, b: Places, j: Ints) -> Floats:
    """Great-circle distances from points a[i] to points b[j] (geo.haversine_km, pair by pair). The half-angle
    sines of the differences come from the points' own by the subtraction formulas: no sine per pair, twice as
    fast for millions of pairs, and equal to a few units in the 12th digit."""
    sin_dlat = b.sin_half_lat[j] * a.cos_half_lat[i] - b.cos_half_lat[j] * a.sin_half_lat[i]
    sin_dlng = b.sin_half_lng[j] * a.cos_half_lng[i] - b.cos_half_lng[j] * a.sin_half_lng[i]
    h = sin_dlat * sin_dlat + a.cos_lat[i] * b.cos_lat[j] * (sin_dlng * sin_dlng)
    distance: Floats = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return distance


def contains(sorted_keys: Ints, keys: Ints) -> Flags:
    """Whether each key is in `sorted_keys` (sorted, unique): a hash lookup, 7x faster than a binary search for
    millions of keys in no particular order."""
    if sorted_keys.shape[0] == 0:
        return np.zeros(keys.shape[0], np.bool_)
    found: Flags = pd.Series(keys, copy=False).isin(sorted_keys).to_numpy()
    return found


# Pairs evaluated at a time: each step's temporaries (a few MB) stay in the CPU's cache. In the matching benchmark's
# batches (3.56 million pairs) the candidates step took 0.8-1.4 s in one pass, 0.6-1.2 s in chunks of this size.
EVALUATION_CHUNK = 1 << 18


def evaluate(pairs: Pairs, tasks: Tasks, volunteers: Volunteers, memberships: Memberships, held: Held,
             weights: scores.Weights, settings: Settings) -> Evaluation:
    """Every rule and factor for every pair, vectorized (a chunk of pairs at a time)."""
    volunteer_places, task_places = Places.of(volunteers.lat, volunteers.lng), Places.of(tasks.lat, tasks.lng)
    n = pairs.task.shape[0]
    parts = [
        _evaluate_chunk(Pairs(pairs.task[lo:lo + EVALUATION_CHUNK], pairs.volunteer[lo:lo + EVALUATION_CHUNK],
                              pairs.applied[lo:lo + EVALUATION_CHUNK]),
                        tasks, volunteers, volunteer_places, task_places, memberships, held, weights, settings)
        for lo in range(0, max(n, 1), EVALUATION_CHUNK)
    ]
    if len(parts) == 1:
        return parts[0]
    return Evaluation(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Evaluation)})


def _evaluate_chunk(pairs: Pairs, tasks: Tasks, volunteers: Volunteers, volunteer_places: Places,
                    task_places: Places, memberships: Memberships, held: Held, weights: scores.Weights,
                    settings: Settings) -> Evaluation:
    t, v = pairs.task, pairs.volunteer
    n = t.shape[0]
    reason = np.zeros(n, np.int8)

    def fail(mask: Flags, code: int) -> None:
        reason[(reason == OK) & mask] = code

    required = tasks.skill_mask[t]
    fail(~np.all((volunteers.skill_mask[v] & required) == required, axis=1), MISSING_SKILLS)
    del required
    age = tasks.start_year[t] - volunteers.birth_year[v] - (tasks.start_day[t] < volunteers.birth_day[v])
    fail((tasks.min_age[t] >= 0) & (age < tasks.min_age[t]), TOO_YOUNG)
    fail((age < ADULT_AGE) & ~volunteers.consent[v], GUARDIAN_CONSENT_REQUIRED)
    del age
    home = ~np.isnan(volunteers.lat)
    has_home = home[v]
    distance = np.full(n, np.nan)
    pv, pt = v[has_home], t[has_home]
    distance[has_home] = haversine_km(volunteer_places, pv, task_places, pt)
    del pv, pt
    radius = tasks.radius_km[t]
    limited = ~np.isnan(radius)
    fail(limited & ~has_home, NO_HOME_LOCATION)
    fail(limited & has_home & (np.nan_to_num(distance) > np.nan_to_num(radius)), TOO_FAR)
    del radius, limited
    fail(overlapping(v, tasks.start[t], tasks.end[t], held.volunteer, held.start, held.end), TIME_CONFLICT)

    key = v * max(tasks.size, 1) + t
    membership = np.where(contains(memberships.team_keys, key), scores.MEMBER_TEAM,
                          np.where(contains(memberships.project_keys, key), scores.MEMBER_PROJECT,
                                   scores.MEMBER_NONE)).astype(np.int64)
    del key
    window = np.maximum(tasks.closes - tasks.opened, 1)
    earliness = np.clip((tasks.closes[t] - pairs.applied) / window[t], 0.0, 1.0)
    facts = scores.Facts(
        task=t, volunteer=v, skills_asked=tasks.skills_asked, distance_km=distance,
        recent_hours=volunteers.recent_hours, attended=volunteers.attended, no_shows=volunteers.no_shows,
        membership=membership, earliness=earliness,
    )
    permille = scores.factors_permille(facts, settings)
    return Evaluation(reason=reason, distance_km=distance, membership=membership, permille=permille,
                      units=scores.score_units(permille, weights))


def explain(evaluation: Evaluation, volunteers: Volunteers, volunteer: int, i: int, weights: scores.Weights,
            decision: str, reason: str, run: str | None = None) -> dict[str, Any]:
    """The stored explanation of pair `i` (the batch builds the same shape in SQL for all its pairs at once)."""
    distance = evaluation.distance_km[i]
    return scores.explanation(
        run, decision, reason, evaluation.permille[i].tolist(), weights,
        distance_km=None if np.isnan(distance) else float(distance),
        recent_hours=float(volunteers.recent_hours[volunteer]), attended=int(volunteers.attended[volunteer]),
        no_shows=int(volunteers.no_shows[volunteer]), membership=int(evaluation.membership[i]),
    )


# Applications, read as a binary COPY straight into NumPy.

APPLICATION_ROW = np.dtype([
    ("fields", ">i2"),
    ("l_id", ">i4"), ("id", "V16"),
    ("l_volunteer", ">i4"), ("volunteer_hi", ">u8"), ("volunteer_lo", ">u8"),
    ("l_task", ">i4"), ("task", ">i4"),
    ("l_applied", ">i4"), ("applied", ">i8"),
    ("l_round", ">i4"), ("round", ">i4"),
])
COPY_HEADER = 19  # signature, flags, header extension length
ID_OFFSET = 2 + 4  # in a row, the id's 16 bytes follow the field count and the id's length
assert APPLICATION_ROW.fields is not None and APPLICATION_ROW.fields["id"][1] == ID_OFFSET


@dataclass(frozen=True)
class Applications:
    """Sign-ups to decide, ordered by volunteer, then task (the tasks' order: by start, so each volunteer's
    applications come in time order, as the solver's overlap components need them)."""

    signup_id: NDArray[np.void]  # 16 raw bytes each (a UUID, big-endian)
    volunteer: Ints  # index into volunteer_ids
    volunteer_ids: list[uuid.UUID]
    task: Ints
    applied_us: Ints  # when the volunteer applied, microseconds since the Unix epoch
    round: Ints  # the task's matching round each joined

    @property
    def size(self) -> int:
        return int(self.task.shape[0])

    @property
    def applied(self) -> Ints:
        """When each applied, in whole seconds since the Unix epoch."""
        whole: Ints = self.applied_us // 1_000_000
        return whole

    def best_first(self, units: Ints, members: Ints) -> Ints:
        """`members` (indexes) by score, highest first, then application time, earliest first."""
        ranked: Ints = members[np.lexsort((members, self.applied_us[members], -units[members]))]
        return ranked


@dataclass(frozen=True)
class Selection:
    """Which sign-ups of the tasks to read: a SQL condition on `s` (signups) and `due` (the task's closed rounds,
    `lo` <= round < `hi`)."""

    condition: str


# Applications of closed rounds no batch has decided: every round from the task's decided_round up to (not
# including) the round it is collecting now. Those rounds are closed: sign-ups read the round under the task's
# row lock, and a batch closes a round in a committed UPDATE of that row before it reads (batch.close_rounds).
# (`+ 0`: the rounds filter the joined rows, they do not lead an index scan. PostgreSQL cannot estimate a range
# whose bounds come from the join and guesses a few dozen rows a task, so at city scale it would look up 2,000
# tasks' applications one index scan at a time, millions of random reads, instead of one scan of signups.)
UNDECIDED = Selection("s.status = 'APPLIED' AND s.matching_round + 0 >= due.lo AND s.matching_round + 0 < due.hi")


def _waitlisted() -> Selection:
    """Sign-ups whose status (Signup.status, the one definition) is WAITLISTED: one task's waitlist."""
    signups = Signup.__table__.alias("s")
    # Compiled inside a query over `s`, so its subquery correlates to `s`; the condition is what follows WHERE.
    query = select(signups.c.id).where(signup_status(signups) == SignupStatus.WAITLISTED)
    compiled = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return Selection(compiled.split("\nWHERE ", 1)[1])


WAITLISTED = _waitlisted()


async def driver_connection(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


# The sign-ups a batch reads: those of the tasks that `which` selects (its condition may use due.lo, due.hi).
APPLICATIONS_SQL = """
    SELECT s.id, s.volunteer_id, due.index, s.applied_at, s.matching_round
    FROM signups s
    JOIN (SELECT id, min(lo) AS lo, min(hi) AS hi, min(n - 1)::int4 AS index
          FROM unnest($1::uuid[], $2::int4[], $3::int4[]) WITH ORDINALITY AS u(id, lo, hi, n) GROUP BY id) due
        ON s.task_id = due.id
    WHERE {condition}
"""
# Why GROUP BY: it tells the planner the task ids are distinct. Joined to a bare unnest() it assumes they repeat,
# so at city scale it hashed the millions of sign-ups (spilling to disk) instead of the tasks; now it hashes the
# tasks against one scan of signups, and a batch of one or two tasks still reads them through the index.


async def load_applications(session: AsyncSession, tasks: Sequence[Task], which: Selection) -> Applications:
    """The sign-ups `which` selects of the tasks, by volunteer, then task."""
    driver = await driver_connection(session)
    buffer = bytearray()

    async def sink(chunk: bytes) -> None:
        buffer.extend(chunk)

    await driver.copy_from_query(
        APPLICATIONS_SQL.format(condition=which.condition),
        [t.id for t in tasks], [t.decided_round for t in tasks], [t.matching_round for t in tasks],
        output=sink, format="binary",
    )
    count = max((len(buffer) - COPY_HEADER - 2) // APPLICATION_ROW.itemsize, 0)
    if count == 0:
        empty = np.zeros(0, np.int64)
        return Applications(np.zeros(0, "V16"), empty, [], empty, empty, empty)
    rows = np.frombuffer(buffer, APPLICATION_ROW, count=count, offset=COPY_HEADER)
    hi = rows["volunteer_hi"].astype(np.uint64)
    lo = rows["volunteer_lo"].astype(np.uint64)
    # Hash-based factorizing of the first 8 bytes, checked against the other 8; sorting 16-byte keys is 10x slower.
    codes, uniques = pd.factorize(hi, sort=True)
    first_lo = np.zeros(len(uniques), np.uint64)
    first_lo[codes] = lo
    if not np.array_equal(first_lo[codes], lo):  # two volunteers share their first 8 bytes: the exact, slow way
        pair = np.frombuffer(np.column_stack([hi, lo]).astype(">u8").tobytes(), "V16")
        _, first, codes = np.unique(pair, return_index=True, return_inverse=True)
        uniques, first_lo = hi[first], lo[first]
    volunteer_ids = [uuid.UUID(int=(high << 64) | low) for high, low in zip(uniques.tolist(), first_lo.tolist(),
                                                                             strict=True)]
    del hi, lo
    # A deterministic order whatever order the rows came in: volunteer (by id), then task (one int64 key; a volunteer
    # holds at most one application to a task).
    volunteer = np.asarray(codes, np.int64)
    task = rows["task"].astype(np.int64)
    order = by_key(volunteer * max(len(tasks), 1) + task)
    # The ids as two 8-byte words each: taking rows of a (n, 2) integer array is 4x faster than of 16-byte voids.
    id_words = np.ndarray((count, 2), np.uint64, buffer, COPY_HEADER + ID_OFFSET,
                          (APPLICATION_ROW.itemsize, 8))
    return Applications(signup_id=id_words[order].view("V16").ravel(), volunteer=volunteer[order],
                        volunteer_ids=volunteer_ids, task=task[order],
                        applied_us=rows["applied"].astype(np.int64)[order] + UNIX_2000 * 1_000_000,
                        round=rows["round"].astype(np.int64)[order])


def signup_uuids(raw: NDArray[np.void]) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=bytes(r)) for r in raw]
