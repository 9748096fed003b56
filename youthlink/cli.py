"""`youthlink up | migrate | seed | worker | beat | admin create | schema`.

Every command reads the same settings, so `youthlink admin create` run beside a running `youthlink up`
(same data folder, or the same URLs) writes to the same database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from youthlink.workers.queues import ALL_QUEUES

app = typer.Typer(help="Youthlink: volunteer coordination for a city youth league.", no_args_is_help=True)
admin_app = typer.Typer(help="Administrator accounts.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Embedded data folder (YOUTHLINK_DATA_DIR)")]


def _use_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["YOUTHLINK_DATA_DIR"] = str(data_dir)
    from youthlink.config import get_settings

    get_settings.cache_clear()


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (docker stop, systemd) stops the platform exactly like Ctrl-C.
    raise KeyboardInterrupt


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _settings():  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from youthlink.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        _fail("配置错误 (settings): " + "; ".join(e["msg"] for e in exc.errors()))


async def _with_session(work):  # type: ignore[no-untyped-def]
    from youthlink.db.engine import make_engine
    from youthlink.db.uow import Database
    from youthlink.runtime import database_url

    db = Database(make_engine(database_url(), _settings(), pool_size=2))
    try:
        async with db.unit_of_work() as session:
            return await work(session)
    finally:
        await db.dispose()


def _migrate() -> None:
    from youthlink.db.migrate import upgrade
    from youthlink.runtime import database_url

    upgrade(database_url())


async def _seed(demo: bool, scale: str) -> bool:
    from youthlink.db.seed import load_demo, load_demo_outcomes, load_reference

    async def work(session):  # type: ignore[no-untyped-def]
        await load_reference(session)
        if not demo:
            return False
        if await load_demo(session, scale):  # type: ignore[arg-type]
            return True
        # A demo loaded before service outcomes existed gets them now (only tasks without a report).
        await load_demo_outcomes(session)
        return False

    return bool(await _with_session(work))


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply the database migrations (Alembic) up to the newest."""
    _use_data_dir(data_dir)
    _settings()
    _migrate()
    typer.echo("migrations applied")


class ScaleChoice(StrEnum):
    small = "small"
    city = "city"


@app.command()
def seed(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also load synthetic demo data (into an empty database)")
    ] = False,
    scale: Annotated[
        ScaleChoice, typer.Option(help="small, or the city's real size (for benchmarks)")
    ] = ScaleChoice.small,
    data_dir: DataDir = None,
) -> None:
    """Load the city's reference data (idempotent), and demo data with --demo."""
    _use_data_dir(data_dir)
    _settings()
    _migrate()
    started = time.monotonic()
    loaded = asyncio.run(_seed(demo, scale.value))
    typer.echo(f"reference data loaded{'; demo data loaded' if loaded else ''} in {time.monotonic() - started:.1f}s")


class RoleChoice(StrEnum):
    city_admin = "city_admin"
    org_admin = "org_admin"


@admin_app.command("create")
def admin_create(
    role: Annotated[RoleChoice, typer.Option(help="city_admin or org_admin")],
    phone: Annotated[str, typer.Option(help="Mainland mobile number, the login")],
    password: Annotated[str, typer.Option(help="At least 8 characters")],
    name: Annotated[str, typer.Option(help="Display name")],
    organization: Annotated[str | None, typer.Option(help="Organization name or GraphQL ID (org_admin)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an administrator account (or add the role to an existing account)."""
    from pydantic import ValidationError

    from youthlink.db.models.enums import Role
    from youthlink.domain import accounts, organizations
    from youthlink.domain.inputs import Login
    from youthlink.errors import DomainError

    _use_data_dir(data_dir)
    _settings()
    try:
        Login(phone=phone, password=password)
    except ValidationError as exc:
        _fail("; ".join(e["msg"] for e in exc.errors()))

    async def work(session):  # type: ignore[no-untyped-def]
        org_id = None
        if organization:
            key = organization
            try:
                from strawberry import relay

                gid = relay.GlobalID.from_id(organization)
                if gid.type_name == "Organization":
                    key = gid.node_id
            except Exception:
                pass
            org_id = (await organizations.find_by_name_or_id(session, key)).id
        account = await accounts.create_admin(
            session, role=Role(role.value.upper()), phone=phone, password=password, name=name,
            organization_id=org_id,
        )
        return account.id

    try:
        account_id = asyncio.run(_with_session(work))
    except DomainError as exc:
        _fail(f"{exc.code}: {exc.message}")
    typer.echo(f"{role.value} ready: {phone} (account {account_id})")


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues")] = ALL_QUEUES,
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
    data_dir: DataDir = None,
) -> None:
    """Run a Celery worker (give each machine the queues it should serve)."""
    _use_data_dir(data_dir)
    _settings()
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "worker",
                               "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO"])


@app.command()
def beat(data_dir: DataDir = None) -> None:
    """Run Celery beat (the periodic jobs). Run exactly one per deployment."""
    _use_data_dir(data_dir)
    settings = _settings()
    schedule = Path(settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "beat",
                               "-s", str(schedule), "--loglevel", "INFO"])


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    os.environ.setdefault("YOUTHLINK_SECRET_KEY", "schema-export-only-not-a-secret")
    from youthlink.graphql.schema import schema_sdl

    typer.echo(schema_sdl(), nl=False)


HEALTH_PATIENCE_SECONDS = 60  # then `up` says what is not healthy yet (and keeps waiting)


def _health(url: str) -> tuple[bool, str]:
    """Whether /health answers 200 (the database, the broker and a worker are reachable), and what it said."""
    import httpx

    try:
        answer = httpx.get(url, timeout=3)
    except httpx.HTTPError as error:
        return False, f"{url}: {error.__class__.__name__}"
    return answer.status_code == 200, answer.text


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on")] = 8000,
    data_dir: DataDir = None,
    demo: Annotated[
        bool | None, typer.Option("--demo/--no-demo", help="Demo data (default: on the first embedded start)")
    ] = None,
    workers: Annotated[int, typer.Option(help="Celery worker processes")] = 2,
) -> None:
    """Start everything: embedded PostgreSQL and Redis (unless URLs are configured), migrations,
    reference/demo data, then the API, a Celery worker and Celery beat. Ctrl-C stops it all."""
    from youthlink.embedded import EmbeddedPostgres, EmbeddedRedis, start_postgres, start_redis

    _use_data_dir(data_dir)
    settings = _settings()
    env = dict(os.environ)
    embedded_pg: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        typer.echo("\nstopping ...")
        for _name, child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded_redis is not None:
            embedded_redis.stop()
        if embedded_pg is not None:
            embedded_pg.stop()
        typer.echo("stopped")

    # Ctrl-C and SIGTERM stop everything; SIGINT is set explicitly because a shell that starts us in the
    # background leaves it ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        first_start = False
        if settings.embedded:
            data = Path(settings.data_dir).resolve()
            first_start = not (data / "pg").exists()
            typer.echo(f"embedded PostgreSQL and Redis in {data}")
            embedded_pg = start_postgres(data)
            env["YOUTHLINK_DATABASE_URL"] = embedded_pg.url
            os.environ["YOUTHLINK_DATABASE_URL"] = embedded_pg.url
            env["YOUTHLINK_SECRET_KEY"] = settings.secret()
            os.environ["YOUTHLINK_SECRET_KEY"] = env["YOUTHLINK_SECRET_KEY"]
            if not settings.broker_url:
                embedded_redis = start_redis(data)
                env["YOUTHLINK_BROKER_URL"] = embedded_redis.url
                os.environ["YOUTHLINK_BROKER_URL"] = embedded_redis.url
            from youthlink.config import get_settings

            get_settings.cache_clear()
        elif not settings.broker_url:
            _fail("YOUTHLINK_BROKER_URL is required when YOUTHLINK_DATABASE_URL is set")
        env["YOUTHLINK_DATA_DIR"] = str(Path(settings.data_dir).resolve())

        typer.echo("applying migrations ...")
        _migrate()
        load_demo = first_start if demo is None else demo
        if asyncio.run(_seed(load_demo, "small")):
            from youthlink.db.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

            typer.echo(f"demo data loaded; demo logins (password: {DEMO_PASSWORD}):")
            for phone, name, _role, _org in DEMO_ACCOUNTS:
                typer.echo(f"  {phone}  {name}")
            typer.echo("  13700000000 ... 13700000299  demo volunteers")

        schedule = Path(env["YOUTHLINK_DATA_DIR"]) / "celerybeat-schedule"
        commands = {
            "api": [sys.executable, "-m", "uvicorn", "youthlink.api.app:app", "--host", host, "--port", str(port),
                    "--no-access-log"],
            "worker": [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "worker", "-Q",
                       ALL_QUEUES, "-c", str(workers), "--loglevel", "WARNING"],
            "beat": [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "beat", "-s", str(schedule),
                     "--loglevel", "WARNING"],
        }
        for name, command in commands.items():
            children.append((name, subprocess.Popen(command, env=env)))
        typer.echo("starting the API, a worker and beat ...")
        shown = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
        probed = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        probe = f"http://{probed}:{port}/health"
        healthy = False
        waited_since = time.monotonic()
        while True:
            for name, child in children:
                if child.poll() is not None:
                    typer.secho(f"{name} exited with code {child.returncode}; stopping", fg=typer.colors.RED, err=True)
                    raise SystemExit(1)
            if not healthy:
                healthy, report = _health(probe)
                if healthy:
                    typer.echo(f"Youthlink is up: GraphQL IDE at http://{shown}:{port}/graphql, dashboard at "
                               f"http://{shown}:{port}/dashboard  (health: /health). Ctrl-C stops.")
                elif time.monotonic() - waited_since > HEALTH_PATIENCE_SECONDS:
                    typer.secho(f"not healthy yet after {HEALTH_PATIENCE_SECONDS} s: {report}; still waiting",
                                fg=typer.colors.YELLOW, err=True)
                    waited_since = time.monotonic()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
