"""API benchmark: OpenTasks (20 per page, near + skills) and Me on the city-scale demo, under concurrent load,
next to a bare asyncpg + orjson endpoint that runs the same SQL and answers the same JSON (measured in the
same run, alternating, so the machine's drift hits both).

    python -m bench.bench_api [--clients 32] [--seconds 10] [--rounds 2]

Needs PostgreSQL (YOUTHLINK_BENCH_DATABASE_URL, default the local server) and Redis at 127.0.0.1:6379; the
first run seeds the city-scale demo (about a minute), every run migrates it to the current schema. Prints
requests per second, p50/p99 latency and each server's CPU time per request (one uvicorn worker each, with
the same pool: 30 connections, no overflow, like the reference's asyncpg pool).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
import orjson

from bench.citydb import BENCH_SECRET, ensure_city, libpq
from youthlink.db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
OPEN_TASKS = (ROOT / "clients" / "volunteer-app.graphql").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: str, port: int, env: dict[str, str], factory: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
         "--no-access-log", "--log-level", "warning", *(["--factory"] if factory else [])],
        env=env, cwd=ROOT,
    )


def uncached_app() -> Any:
    """The app without its cache of public answers (--no-public-cache): every request executes."""
    from youthlink.api.app import create_app

    return create_app(public_cache=False)


async def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url):
                    return  # any answer means it listens
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


@dataclass
class Case:
    name: str
    method: str
    url: str
    body: bytes | None


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float | None = None  # the server process's CPU time during the measurement

    @property
    def cpu_ms(self) -> float | None:
        return self.cpu_seconds / self.requests * 1000 if self.cpu_seconds is not None and self.requests else None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def load(case: Case, headers: dict[str, str], clients: int, seconds: float, pid: int | None = None) -> Result:
    """`clients` connections sending back to back for `seconds` (after a 2 s warm-up)."""
    connector = aiohttp.TCPConnector(limit=clients)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        async def one() -> None:
            async with http.request(case.method, case.url, data=case.body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{case.name}: HTTP {response.status}")

        async def client(until: float, record: bool) -> None:
            while (now := time.perf_counter()) < until:
                await one()
                if record:
                    latencies.append(time.perf_counter() - now)

        warm = time.perf_counter() + 2
        await asyncio.gather(*[client(warm, False) for _ in range(clients)])
        cpu_before = cpu_seconds(pid) if pid else None
        start = time.perf_counter()
        await asyncio.gather(*[client(start + seconds, True) for _ in range(clients)])
        elapsed = time.perf_counter() - start
        cpu_after = cpu_seconds(pid) if pid else None
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Result(len(latencies), elapsed, latencies, cpu)


async def fetch_json(case: Case, headers: dict[str, str]) -> Any:
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.request(case.method, case.url, data=case.body) as response:
            return orjson.loads(await response.read())


async def pick_viewer(url: str) -> tuple[str, dict[str, Any]]:
    """A volunteer's token and an OpenTasks filter that finds a full page near their home."""
    conn = await asyncpg.connect(libpq(url))
    try:
        account = await conn.fetchrow(
            "SELECT a.id, a.token_version, v.town_id FROM accounts a JOIN volunteers v ON v.id = a.volunteer_id "
            "ORDER BY v.total_hours DESC LIMIT 1")
        town = await conn.fetchrow("SELECT lat, lng FROM towns WHERE id = $1", account["town_id"])
    finally:
        await conn.close()
    now = datetime.now(UTC)
    token = jwt.encode({"sub": str(account["id"]), "ver": account["token_version"], "iat": now,
                        "exp": now + timedelta(hours=2)}, BENCH_SECRET, algorithm="HS256")
    filters = {"status": ["OPEN"], "near": {"lat": town["lat"], "lng": town["lng"], "radiusKm": 10},
               "skills": ["first_aid", "swimming"], "startsAfter": now.isoformat()}
    return token, filters


def report(name: str, graphql: list[Result], reference: list[Result]) -> None:
    g_rate = statistics.median(r.rate for r in graphql)
    r_rate = statistics.median(r.rate for r in reference)
    g = max(graphql, key=lambda r: r.rate)
    r = max(reference, key=lambda r: r.rate)
    for label, rate, best, results in (("graphql  ", g_rate, g, graphql), ("reference", r_rate, r, reference)):
        cpu = [c for c in (result.cpu_ms for result in results) if c is not None]
        cpu_note = f"  server CPU {statistics.median(cpu):5.2f} ms/req" if cpu else ""
        print(f"{name:10s} {label} {rate:8.0f} req/s  p50 {best.percentile(0.5):6.1f} ms  "
              f"p99 {best.percentile(0.99):6.1f} ms{cpu_note}")
    print(f"{name:10s} ratio     {g_rate / r_rate:8.2f}x of the reference's throughput")


async def run(args: argparse.Namespace, url: str) -> None:
    token, filters = await pick_viewer(url)
    env = {**os.environ, "YOUTHLINK_DATABASE_URL": url, "YOUTHLINK_SECRET_KEY": BENCH_SECRET,
           "YOUTHLINK_BROKER_URL": os.environ.get("YOUTHLINK_BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"),
           "YOUTHLINK_ENV": "production",
           # The reference's asyncpg pool keeps up to 30 connections and makes the rest wait: the same here.
           "YOUTHLINK_DB_POOL_SIZE": "30", "YOUTHLINK_DB_MAX_OVERFLOW": "0"}
    ports = free_port(), free_port()
    app_server = serve("bench.bench_api:uncached_app", ports[0], env, factory=True) if args.no_public_cache \
        else serve("youthlink.api.app:app", ports[0], env)
    servers = [app_server, serve("bench.reference_api:app", ports[1], env)]
    try:
        await wait_up(f"http://127.0.0.1:{ports[0]}/graphql?query=%7B__typename%7D")
        await wait_up(f"http://127.0.0.1:{ports[1]}/open-tasks")  # (405 to a GET: it listens)
        graphql_url, reference_url = f"http://127.0.0.1:{ports[0]}/graphql", f"http://127.0.0.1:{ports[1]}"
        cases = {
            "OpenTasks": (
                Case("OpenTasks", "POST", graphql_url, orjson.dumps({"query": OPEN_TASKS, "operationName": "OpenTasks",
                                                                      "variables": {"filter": filters, "first": 20}})),
                Case("OpenTasks ref", "POST", f"{reference_url}/open-tasks", orjson.dumps({**filters, "first": 20})),
            ),
            "Me": (
                Case("Me", "POST", graphql_url, orjson.dumps({"query": OPEN_TASKS, "operationName": "Me"})),
                Case("Me ref", "GET", f"{reference_url}/me", None),
            ),
        }
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for name, (ours, theirs) in cases.items():
            same = await fetch_json(ours, headers) == await fetch_json(theirs, headers)
            page = await fetch_json(ours, headers)
            print(f"{name}: same JSON as the reference: {'yes' if same else 'NO'}; "
                  f"{len(orjson.dumps(page))} bytes")
        print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per measurement, {args.rounds} rounds, "
              f"alternating graphql/reference; {os.cpu_count()} cores shared by servers and load generator; "
              f"cache of public answers {'off' if args.no_public_cache else 'on (OpenTasks is public, Me is not)'}")
        if args.floor:
            # The stack's fixed cost: a request that reads nothing but the token's account (as both cases do).
            floor = Case("Floor", "POST", graphql_url, orjson.dumps({"query": "{ __typename }"}))
            result = await load(floor, headers, args.clients, args.seconds, servers[0].pid)
            print(f"{'Floor':10s} graphql   {result.rate:8.0f} req/s  p50 {result.percentile(0.5):6.1f} ms  "
                  f"p99 {result.percentile(0.99):6.1f} ms  server CPU {result.cpu_ms or 0:5.2f} ms/req  "
                  "({ __typename } with the bearer token: HTTP, the GraphQL view, the actor's statement)")
        for name, (ours, theirs) in cases.items():
            graphql, reference = [], []
            for _ in range(args.rounds):
                graphql.append(await load(ours, headers, args.clients, args.seconds, servers[0].pid))
                reference.append(await load(theirs, headers, args.clients, args.seconds, servers[1].pid))
            report(name, graphql, reference)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-public-cache", action="store_true",
                        help="run the app without its short-lived cache of public answers (every request executes)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure `{ __typename }` with the token: the GraphQL stack's cost per request")
    args = parser.parse_args()
    url = ensure_city()
    try:
        upgrade(url)  # the indexes the current code expects
    except Exception as exc:  # a database migrated by other means: measure it as it is, but say so
        print(f"note: could not migrate {url} ({type(exc).__name__}); measuring its current schema", flush=True)
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
