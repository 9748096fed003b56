"""A city-scale database for the benchmarks: created, migrated and seeded once, then reused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import asyncpg

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/youthlink_bench"
BENCH_SECRET = "benchmark-only-secret-not-for-production"


def database_url() -> str:
    return os.environ.get("YOUTHLINK_BENCH_DATABASE_URL", DEFAULT_URL)


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _prepare(url: str) -> bool:
    """Create the database if missing; True when it already holds the city-scale demo."""
    head, _, name = libpq(url).rpartition("/")
    name = name.split("?")[0]
    admin = await asyncpg.connect(f"{head}/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(libpq(url))
    try:
        has_table = await conn.fetchval("SELECT to_regclass('public.volunteers') IS NOT NULL")
        return bool(has_table and await conn.fetchval("SELECT count(*) FROM volunteers") >= 66_000)
    finally:
        await conn.close()


def ensure_city(url: str | None = None) -> str:
    """The URL of a database with the city-scale demo (seeding it the first time takes about a minute)."""
    url = url or database_url()
    if not asyncio.run(_prepare(url)):
        print(f"seeding the city-scale demo into {url} (once) ...", flush=True)
        started = time.monotonic()
        env = {**os.environ, "YOUTHLINK_DATABASE_URL": url, "YOUTHLINK_SECRET_KEY": BENCH_SECRET}
        subprocess.run([sys.executable, "-m", "youthlink.cli", "seed", "--demo", "--scale", "city"], env=env,
                       check=True)
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    return url
