"""Matching benchmark: one city-wide batch on the city-scale demo, next to the bare OR-Tools solve of the same
instance and a greedy baseline, measured in the same run.

    python -m bench.bench_matching [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

It creates a scratch database, seeds the city-scale demo into it (`youthlink seed --demo --scale city`: 66,000
volunteers, 755 teams, a year of approved hours, the coming month's 2,000 tasks), turns those 2,000 tasks into
MATCHED tasks whose deadline has passed with about 35,000 free slots, and has every volunteer apply to the
~50 nearest tasks they are eligible for (plus two they are not, for the rules to reject): about 3.3 million
candidate pairs. It vacuums and analyzes them (as autovacuum would have by the deadline) and takes a checkpoint.
Then, each in a fresh process (so each peak memory is its own):

  (b) reference  the instance built as the batch builds it (its rounds closed in a transaction rolled back
                 afterwards, so the batch finds them as it would), then the bare SimpleMinCostFlow solve of its
                 graph (arrays in, flows out), and the greedy baseline (best score first)
  (a) batch      matching.run_batch end to end: close the rounds, due tasks, load from PostgreSQL, build
                 candidates, solve, write every decision back (the winners' rows and one MatchingDecision
                 per task round), commit
  (c) greedy     the baseline's objective as a fraction of the batch's

The scratch database is dropped at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-only-secret-not-for-production"
APPLY_ELIGIBLE, APPLY_INELIGIBLE = 52, 2
CHUNK = 2048


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sqlalchemy_url(libpq: str) -> str:
    return libpq.replace("postgresql://", "postgresql+asyncpg://", 1)


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "YOUTHLINK_DATABASE_URL": sqlalchemy_url(url), "YOUTHLINK_SECRET_KEY": SECRET,
            "YOUTHLINK_ENV": "dev", "PYTHONPATH": str(ROOT)}


# The instance

PREPARE_TASKS = """
SELECT setseed(0.2026);
UPDATE tasks SET assignment_mode = 'MATCHED', created_at = now() - interval '7 days',
       signup_deadline = now() - interval '1 minute',
       slots = filled_slots + 5 + floor(random() * 26)::int,
       min_age = CASE WHEN random() < 0.2 THEN 16 END,
       match_radius_km = CASE WHEN random() < 0.3 THEN 12.0 END
WHERE status = 'OPEN' AND starts_at > now();
"""


async def prepare(url: str) -> dict[str, Any]:
    """Make the coming month's tasks a due matching instance and write the applications (binary COPY)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PREPARE_TASKS)
        tasks = await conn.fetch("""
            SELECT id, lat, lng, starts_at, required_skills, coalesce(min_age, -1) AS min_age,
                   coalesce(match_radius_km, 'NaN') AS radius FROM tasks
            WHERE status = 'OPEN' AND assignment_mode = 'MATCHED' ORDER BY starts_at, id""")
        volunteers = await conn.fetch("""
            SELECT id, home_lat, home_lng, birth_date, guardian_consent_at IS NOT NULL AS consent, skills
            FROM volunteers ORDER BY id""")
        taken = await conn.fetch("""
            SELECT s.volunteer_id, s.task_id FROM signups s JOIN tasks t ON t.id = s.task_id
            WHERE t.status = 'OPEN' AND t.assignment_mode = 'MATCHED'""")
        skills = sorted({s for t in tasks for s in t["required_skills"]} | {s for v in volunteers for s in v["skills"]})
        bit = {s: np.uint64(1 << i) for i, s in enumerate(skills)}

        def mask(values: list[str]) -> np.uint64:
            out = np.uint64(0)
            for value in values:
                out |= bit[value]
            return out

        t_lat = np.radians(np.array([t["lat"] for t in tasks]))
        t_lng = np.radians(np.array([t["lng"] for t in tasks]))
        t_mask = np.array([mask(t["required_skills"]) for t in tasks], np.uint64)
        t_min_age = np.array([t["min_age"] for t in tasks])
        t_radius = np.array([t["radius"] for t in tasks], float)
        t_year = np.array([t["starts_at"].year for t in tasks])
        t_day = np.array([t["starts_at"].month * 100 + t["starts_at"].day for t in tasks])
        v_lat = np.radians(np.array([v["home_lat"] for v in volunteers], float))
        v_lng = np.radians(np.array([v["home_lng"] for v in volunteers], float))
        v_mask = np.array([mask(v["skills"]) for v in volunteers], np.uint64)
        v_year = np.array([v["birth_date"].year for v in volunteers])
        v_day = np.array([v["birth_date"].month * 100 + v["birth_date"].day for v in volunteers])
        v_consent = np.array([v["consent"] for v in volunteers])
        task_index = {t["id"]: i for i, t in enumerate(tasks)}
        volunteer_index = {v["id"]: i for i, v in enumerate(volunteers)}
        existing = np.array([volunteer_index[r["volunteer_id"]] * len(tasks) + task_index[r["task_id"]]
                             for r in taken], np.int64)

        picked_v: list[np.ndarray] = []
        picked_t: list[np.ndarray] = []
        for lo in range(0, len(volunteers), CHUNK):
            rows = np.arange(lo, min(lo + CHUNK, len(volunteers)))
            dlat = t_lat[None, :] - v_lat[rows, None]
            dlng = t_lng[None, :] - v_lng[rows, None]
            a = np.sin(dlat / 2) ** 2 + np.cos(v_lat[rows, None]) * np.cos(t_lat[None, :]) * np.sin(dlng / 2) ** 2
            km = 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))
            age = t_year[None, :] - v_year[rows, None] - (t_day[None, :] < v_day[rows, None])
            ok = (v_mask[rows, None] & t_mask[None, :]) == t_mask[None, :]
            ok &= (t_min_age[None, :] < 0) | (age >= t_min_age[None, :])
            ok &= (age >= 18) | v_consent[rows, None]
            ok &= np.isnan(t_radius[None, :]) | (km <= np.nan_to_num(t_radius[None, :], nan=np.inf))
            free = ~np.isin(rows[:, None] * len(tasks) + np.arange(len(tasks))[None, :], existing)
            for wanted, allowed in ((APPLY_ELIGIBLE, ok & free), (APPLY_INELIGIBLE, ~ok & free)):
                distance = np.where(allowed, km, np.inf)
                nearest = np.argpartition(distance, wanted, axis=1)[:, :wanted]
                keep = np.isfinite(np.take_along_axis(distance, nearest, axis=1))
                picked_v.append(np.repeat(rows, wanted)[keep.ravel()])
                picked_t.append(nearest.ravel()[keep.ravel()])
        vol = np.concatenate(picked_v)
        task = np.concatenate(picked_t)
        n = vol.shape[0]

        row = np.dtype([("fields", ">i2"), ("l_id", ">i4"), ("id", "V16"), ("l_task", ">i4"), ("task", "V16"),
                        ("l_vol", ">i4"), ("vol", "V16"), ("l_status", ">i4"), ("status", "S7"),
                        ("l_applied", ">i4"), ("applied", ">i8")])
        records = np.zeros(n, row)
        records["fields"] = 5
        records["l_id"] = records["l_task"] = records["l_vol"] = 16
        records["l_status"], records["l_applied"] = 7, 8
        # Time-ordered ids keep the primary key's B-tree appending (the bench's choice; any UUID would do).
        prefix = uuid.uuid4().bytes[:8]
        records["id"] = np.frombuffer(b"".join(prefix + i.to_bytes(8, "big") for i in range(n)), "V16")
        records["task"] = np.frombuffer(b"".join(t["id"].bytes for t in tasks), "V16")[task]
        records["vol"] = np.frombuffer(b"".join(v["id"].bytes for v in volunteers), "V16")[vol]
        records["status"] = b"APPLIED"
        now = datetime.now(UTC)
        window = (timedelta(days=7) - timedelta(minutes=2)).total_seconds()
        rng = np.random.default_rng(2026)
        applied = now - timedelta(days=7) + timedelta(seconds=1)
        since_2000 = int((applied - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)
        records["applied"] = since_2000 + np.asarray(rng.random(n) * window * 1_000_000).astype(np.int64)

        indexes = await conn.fetch("""
            SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition FROM pg_index
            WHERE indrelid = 'signups'::regclass AND NOT indisprimary""")
        async with conn.transaction():
            for index in indexes:
                await conn.execute(f"DROP INDEX {index['name']}")
            payload = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + records.tobytes() + b"\xff\xff"
            await conn.copy_to_table("signups", source=io.BytesIO(payload), format="binary",
                                     columns=["id", "task_id", "volunteer_id", "status", "applied_at"])
            for index in indexes:
                await conn.execute(index["definition"])
        # Vacuumed and analyzed, as autovacuum would have them long before a deadline passes (the applications
        # trickle in over days); on a server without autovacuum, the batch would be the first to read them and
        # would pay for setting every row's hint bits.
        await conn.execute("VACUUM ANALYZE")
        # Written to disk before anything is timed: a checkpoint of the seeding's gigabytes running under the
        # batch would slow its writes by a varying amount.
        await conn.execute("CHECKPOINT")
        slots = await conn.fetchval("""SELECT sum(slots - filled_slots) FROM tasks
                                       WHERE status = 'OPEN' AND assignment_mode = 'MATCHED'""")
        return {"tasks": len(tasks), "volunteers": len(volunteers), "applications": n, "free_slots": int(slots),
                "applicants": int(np.unique(vol).shape[0])}
    finally:
        await conn.close()


# The measurements, each run in its own process

async def measure_reference() -> dict[str, Any]:
    from youthlink.config import get_settings
    from youthlink.db.engine import make_engine
    from youthlink.db.uow import Database
    from youthlink.domain.matching import batch, solver

    db = Database(make_engine(os.environ["YOUTHLINK_DATABASE_URL"], get_settings(), pool_size=1))
    async with db.sessionmaker() as session, session.begin():
        now = datetime.now(UTC)
        await batch.close_rounds(session, None, now)
        rows = await batch.due_tasks(session, None, now)
        instance = await batch.load_instance(session, rows, now)
        await session.rollback()  # the batch closes the rounds itself
    await db.dispose()
    problem = instance.problem
    comps = solver.components(problem)
    graph = solver.flow_graph(problem, comps, np.where(comps.clique, 1, comps.independent))
    started = time.perf_counter()
    chosen = solver.solve_flow(graph)
    bare = time.perf_counter() - started
    started = time.perf_counter()
    greedy = solver.greedy(problem)
    greedy_seconds = time.perf_counter() - started
    return {
        "candidates": problem.size, "applications": instance.apps.size, "cliques_only": bool(comps.clique.all()),
        "arcs": int(graph.tails.shape[0]), "nodes": graph.nodes, "bare_seconds": bare,
        "bare_objective": solver.objective(problem, chosen), "bare_feasible": solver.is_feasible(problem, chosen),
        "greedy_seconds": greedy_seconds, "greedy_objective": solver.objective(problem, greedy),
        "build_timings": instance.timings, "peak_mib": peak_mib(),
    }


async def measure_batch() -> dict[str, Any]:
    from youthlink.config import get_settings
    from youthlink.db.engine import make_engine
    from youthlink.db.uow import Database
    from youthlink.domain import matching

    db = Database(make_engine(os.environ["YOUTHLINK_DATABASE_URL"], get_settings(), pool_size=1))
    started = time.perf_counter()
    async with db.unit_of_work() as session:
        result = await matching.run_batch(session)
    total = time.perf_counter() - started
    peak = peak_mib()
    async with db.unit_of_work() as session:
        again = await matching.run_batch(session)
    await db.dispose()
    return {**result, "total_seconds": total, "peak_mib": peak, "second_run": again}


def child(mode: str, url: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, f"--{mode}", "--url", url], env=environment(url), check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# Orchestration

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference or args.batch:
        work = measure_reference() if args.reference else measure_batch()
        print(json.dumps(asyncio.run(work), default=str))
        return

    name = f"youthlink_bench_matching_{uuid.uuid4().hex[:8]}"
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        print(f"scratch database {name}; seeding the city-scale demo ...", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "youthlink.cli", "seed", "--demo", "--scale", "city"],
                       env=environment(url), check=True, cwd=ROOT)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        instance = asyncio.run(prepare(url))
        prepared = time.perf_counter() - started
        print(f"seeded in {seeded:.0f} s; instance written in {prepared:.0f} s: {instance}", flush=True)
        reference = child("reference", url)
        print(f"reference done: {json.dumps(reference, default=str)}", flush=True)
        batch = child("batch", url)
        print(f"batch done: {json.dumps(batch, default=str)}", flush=True)
        report(instance, reference, batch)
    finally:
        if not args.keep:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped {name}")


def report(instance: dict[str, Any], reference: dict[str, Any], batch: dict[str, Any]) -> None:
    filled, score = batch["filled"], batch["score"]
    bare_filled, bare_score = reference["bare_objective"]
    greedy_filled, greedy_score = reference["greedy_objective"]
    timings = batch["timings"]
    decide = timings["load"] + timings["candidates"] + timings["solve"]
    print()
    print("Matching benchmark (city-scale demo)")
    print(f"  instance      {instance['tasks']:,} tasks, {instance['free_slots']:,} free slots, "
          f"{instance['applicants']:,} applicants, {batch['applications']:,} applications, "
          f"{batch['candidates']:,} candidate pairs ({batch['candidates'] / instance['applicants']:.1f} a volunteer)")
    print(f"  graph         {reference['nodes']:,} nodes, {reference['arcs']:,} arcs; every volunteer's clashes "
          f"pairwise: {reference['cliques_only']}")
    print(f"(b) bare solve  {reference['bare_seconds']:.2f} s  (OR-Tools SimpleMinCostFlow, arrays in, flows out)")
    ratio = batch["total_seconds"] / reference["bare_seconds"]
    print(f"(a) batch       {batch['total_seconds']:.2f} s end to end = {ratio:.1f}x the bare solve")
    print(f"                close {timings['close']:.2f} s, load {timings['load']:.2f} s, candidates "
          f"{timings['candidates']:.2f} s, solve {timings['solve']:.2f} s, write {timings['write']:.2f} s (+ commit)")
    print(f"                the solver set aside {batch['candidates'] - batch['kept']:,} candidates no optimum needs "
          f"({timings['solver_prune']:.2f} s) and solved the {batch['kept']:,} left "
          f"(flow {timings['solver_flow']:.2f} s)")
    print(f"                deciding (load + candidates + solve) {decide:.2f} s = "
          f"{decide / reference['bare_seconds']:.1f}x the bare solve; writing {batch['applications']:,} decisions "
          f"{timings['write']:.2f} s")
    print(f"                {batch['confirmed']:,} confirmed, {batch['waitlisted']:,} waitlisted, "
          f"{batch['rejected']:,} rejected; method {batch['method']}, exact {batch['exact']}")
    print(f"  objective     batch ({filled:,} slots, {score / 1000:,.3f} points) vs bare solve ({bare_filled:,}, "
          f"{bare_score / 1000:,.3f}): {'equal' if (filled, score) == (bare_filled, bare_score) else 'DIFFERENT'}")
    print(f"(c) greedy      {greedy_filled:,} slots ({greedy_filled / filled:.2%} of the batch's), "
          f"{greedy_score / 1000:,.3f} points ({greedy_score / score:.2%}), in {reference['greedy_seconds']:.2f} s")
    print(f"  peak memory   batch process {batch['peak_mib']:,.0f} MiB; reference process "
          f"{reference['peak_mib']:,.0f} MiB")
    print(f"  retried       a second batch right after: {batch['second_run']}")


if __name__ == "__main__":
    main()
