"""Statistics benchmark: CityOverview for a year and for a month on the city-scale demo (about 1M service
records), from the rollups, next to the same figures computed by direct aggregate queries over the ledger in
the same run (and checked equal); then the service outcome totals per project for the same periods.

    python -m bench.bench_stats [--repeat 50] [--direct-repeat 5] [--year 2026] [--month 2026-06]

Uses the city-scale database of bench/citydb.py (seeded once). The rollup tables are created there if missing
and rebuilt from the ledger (`stats.rebuild`, timed: it also recomputes the registered-volunteers histogram);
every call then runs CityOverview the way the `cityStats` resolver does, in a read session on one connection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import date, timedelta
from typing import Any

from bench import citydb

MIGRATION_0007_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_service_records_organization_started "
    "ON service_records (organization_id, started_at)",
    "CREATE INDEX IF NOT EXISTS ix_tasks_starts_at_figures ON tasks (starts_at) "
    "INCLUDE (status, organization_id, slots, filled_slots)",
    "CREATE INDEX IF NOT EXISTS ix_volunteers_created_at_total_hours ON volunteers (created_at, total_hours)",
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    from sqlalchemy import text

    from youthlink.config import get_settings
    from youthlink.db.base import Base
    from youthlink.db.engine import make_engine
    from youthlink.db.models import StatsRollup, StatsVolunteers
    from youthlink.db.uow import Database
    from youthlink.domain import outcomes, rollups, stats
    from youthlink.domain.inputs import StatsPeriod

    db = Database(make_engine(os.environ["YOUTHLINK_DATABASE_URL"], get_settings(), pool_size=2))
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[StatsRollup.__table__, StatsVolunteers.__table__])
        for statement in MIGRATION_0007_INDEXES:  # the demo may predate migration 0007
            await conn.execute(text(statement))
    async with db.unit_of_work() as session:
        empty = not await session.scalar(text("SELECT EXISTS (SELECT 1 FROM stats_periods)"))
        started = time.perf_counter()
        drift = await rollups.rebuild(session)
        took = time.perf_counter() - started
        rows = await session.scalar(text("SELECT count(*) || ' rows' FROM stats_periods"))
        records = await session.scalar(text("SELECT count(*) FROM service_records"))
    print(f"ledger: {records:,} service records; rollups: {rows}")
    print(f"stats.rebuild (whole ledger): {took:.1f} s, {'built' if empty else 'drift ' + str(drift)}")

    year = StatsPeriod.model_validate({"from": date(args.year, 1, 1), "to": date(args.year, 12, 31)})
    first = date.fromisoformat(args.month + "-01")
    month = StatsPeriod.model_validate({"from": first, "to": rollups.period_end(first, "month") - timedelta(days=1)})
    city = stats.Scope()

    async def timed(period: Any, direct: bool, repeat: int) -> tuple[list[float], Any]:
        times, figures = [], None
        async with db.read() as session:
            await stats.overview(session, city, period, from_ledger=direct)  # warm-up
            for _ in range(repeat):
                started = time.perf_counter()
                figures = await stats.overview(session, city, period, from_ledger=direct)
                times.append((time.perf_counter() - started) * 1000)
        return times, figures

    print(f"\n{'CityOverview':<22}{'rollups p50':>12}{'p99':>9}{'direct p50':>12}{'p99':>9}{'speed-up':>10}  same")
    for name, period in ((f"year {args.year}", year), (f"month {args.month}", month)):
        fast, a = await timed(period, False, args.repeat)
        slow, b = await timed(period, True, args.direct_repeat)
        same = a.figures() == b.figures()
        print(f"{name:<22}{statistics.median(fast):>10.1f}ms{pct(fast, 0.99):>7.1f}ms"
              f"{statistics.median(slow):>10.0f}ms{pct(slow, 0.99):>7.0f}ms"
              f"{statistics.median(slow) / statistics.median(fast):>9.0f}x  {'yes' if same else 'NO'}")
        assert a.source == "rollups" and b.source == "ledger"
        if not same:
            for key, value in a.figures().items():
                if value != b.figures()[key]:
                    print(f"  differs: {key}")

    # Service outcomes per project (cityStats.outcomes), summed straight from the reports.
    async with db.read() as session:
        reports = await session.scalar(text("SELECT to_regclass('service_outcomes') IS NOT NULL"))
        if reports:
            reports = await session.scalar(text("SELECT count(*) FROM service_outcomes"))
    if not reports:
        print("\nservice outcomes: none in this database (`youthlink seed --demo --scale city` adds them)")
    else:
        print(f"\n{'outcome totals':<22}{'p50':>12}{'p99':>9}  ({reports:,} reports in all)")
        for name, period in ((f"year {args.year}", year), (f"month {args.month}", month)):
            times = []
            async with db.read() as session:
                await outcomes.totals(session, city, period)  # warm-up
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    await outcomes.totals(session, city, period)
                    times.append((time.perf_counter() - started) * 1000)
            print(f"{name:<22}{statistics.median(times):>10.1f}ms{pct(times, 0.99):>7.1f}ms")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--direct-repeat", type=int, default=5)
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--month", default="2026-06")
    args = parser.parse_args()
    url = citydb.ensure_city()
    os.environ.setdefault("YOUTHLINK_DATABASE_URL", url)
    os.environ.setdefault("YOUTHLINK_SECRET_KEY", citydb.BENCH_SECRET)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
