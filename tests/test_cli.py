"""The command line: every command reads the same settings and writes to the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests import factories
from tests import services as svc
from youthlink.config import Settings
from youthlink.db.models import Account, RoleGrant, Volunteer
from youthlink.db.models.enums import Role


def youthlink(services: svc.Services, *args: str, env: dict[str, str] | None = None, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "youthlink.cli", *args], env=env or services.env(),
                          capture_output=True, text=True, timeout=timeout, cwd=svc.ROOT)


async def test_admin_create_writes_to_the_same_database(services: svc.Services, db: Any) -> None:
    # given a phone nobody uses yet
    phone = factories.next_phone()

    # when an org admin is created from the command line, twice (it is idempotent)
    for _ in range(2):
        done = youthlink(services, "admin", "create", "--role", "org_admin", "--phone", phone, "--password",
                         "a long passphrase", "--name", "石塘团委", "--organization", "共青团石塘镇委员会")
        assert done.returncode == 0, done.stderr

    # then the account exists once, with one org-admin grant scoped to that organization
    async with db.read() as session:
        account = await session.scalar(select(Account).where(Account.phone == phone))
        assert account is not None
        grants = (await session.scalars(select(RoleGrant).where(RoleGrant.account_id == account.id))).all()
    org = await factories.organization(db, "共青团石塘镇委员会")
    assert [(g.role, g.organization_id) for g in grants] == [(Role.ORG_ADMIN, org.id)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "org_admin", "--phone", "12345", "--password", "a long passphrase", "--name", "x",
          "--organization", "共青团石塘镇委员会"], "手机号格式不正确"),
        (["--role", "org_admin", "--phone", "13912345670", "--password", "a long passphrase", "--name", "x",
          "--organization", "没有这个组织"], "ORGANIZATION_NOT_FOUND"),
        (["--role", "org_admin", "--phone", "13912345671", "--password", "a long passphrase", "--name", "x"],
         "ORGANIZATION_REQUIRED"),
        (["--role", "city_admin", "--phone", "13912345672", "--password", "short", "--name", "x"], "WEAK_PASSWORD"),
    ],
)
async def test_admin_create_refuses_bad_input_clearly(services: svc.Services, db: Any, args: list[str],
                                                      message: str) -> None:
    done = youthlink(services, "admin", "create", *args)
    assert done.returncode == 1 and message in done.stderr
    async with db.read() as session:
        phone = args[args.index("--phone") + 1]
        assert await session.scalar(select(Account.id).where(Account.phone == phone)) is None


def test_migrate_is_repeatable(services: svc.Services) -> None:
    for _ in range(2):
        done = youthlink(services, "migrate")
        assert done.returncode == 0, done.stderr


def test_a_server_deployment_refuses_a_missing_or_default_secret() -> None:
    with pytest.raises(ValidationError, match="YOUTHLINK_SECRET_KEY"):
        Settings(database_url="postgresql+asyncpg://x@db/x", secret_key=None, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="YOUTHLINK_SECRET_KEY"):
        Settings(database_url="postgresql+asyncpg://x@db/x", secret_key="change-me", _env_file=None)  # type: ignore[call-arg]
    assert Settings(database_url="postgresql+asyncpg://x@db/x", secret_key="s" * 32, _env_file=None).secret()  # type: ignore[call-arg]


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOUTHLINK_")}
    env["YOUTHLINK_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _up_until_healthy(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "youthlink.cli", "up", "--port", str(port), "--workers", "1"],
        env=_embedded_env(data_dir), stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=data_dir.parent,
    )
    # It says it is up only once it is: /health answers 200 (database, broker, a worker) the moment it says so.
    deadline = time.monotonic() + 120
    said = log.read_text().count("Youthlink is up")
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if log.read_text().count("Youthlink is up") > said:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=3)
            assert health.status_code == 200, health.text
            return process
        time.sleep(0.2)
    process.kill()
    raise AssertionError("youthlink up did not say it is up:\n" + log.read_text())


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def _children_of(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


def test_up_starts_everything_embedded_and_stops_cleanly(tmp_path: Path) -> None:
    # given an empty data folder and nothing configured
    data_dir = tmp_path / "data"
    port = svc.free_port()
    log = tmp_path / "up.log"

    # when `youthlink up` starts, the API answers healthy (database, broker and a worker)
    process = _up_until_healthy(data_dir, port, log)
    children = _children_of(process.pid)
    towns = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ towns { name } }"}, timeout=10).json()
    assert len(towns["data"]["towns"]) == 16
    demo_login = 'mutation { login(input: {phone: "13900000000", password: "youthlink-demo"}) { token } }'
    login = httpx.post(f"http://127.0.0.1:{port}/graphql", timeout=10, json={"query": demo_login}).json()
    assert login["data"]["login"]["token"], "the demo city admin can log in"
    # and the demo's hours are in the statistics' rollups at once (a calendar year reads them), not only after
    # the nightly rebuild: the dashboard shows them from the first start
    year = (date.today() - timedelta(days=40)).year  # the demo's records span the last 300 days
    stats = httpx.post(f"http://127.0.0.1:{port}/graphql", timeout=10, headers={
        "Authorization": f"Bearer {login['data']['login']['token']}"}, json={
        "query": "query($from: Date!, $to: Date!) { cityStats(from: $from, to: $to) { totalHours } }",
        "variables": {"from": f"{year}-01-01", "to": f"{year}-12-31"}}).json()
    assert stats["data"]["cityStats"]["totalHours"] > 0, stats

    # then SIGTERM stops every child and the command exits cleanly
    assert _stop(process) == 0
    assert len(children) >= 3
    for child in children:
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
    assert "GraphQL IDE at http://localhost:" in log.read_text() and "/dashboard" in log.read_text()

    # and a second start on the same folder keeps the data (demo data is not loaded twice)
    process = _up_until_healthy(data_dir, port, log)
    try:
        import asyncio

        from youthlink.embedded import start_postgres

        async def volunteers() -> int:
            import asyncpg

            pg = start_postgres(data_dir)
            conn = await asyncpg.connect(pg.url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                return int(await conn.fetchval("SELECT count(*) FROM volunteers"))
            finally:
                await conn.close()

        assert asyncio.run(volunteers()) == 300
    finally:
        assert _stop(process) == 0
    assert "demo data loaded" in log.read_text()
    assert log.read_text().count("demo data loaded") == 1


__all__ = ["Volunteer", "func"]
