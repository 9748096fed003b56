"""docker-compose.yml, the Dockerfile and .dockerignore name real entry points and real settings.

No Docker engine is needed: the files are parsed and every command is resolved against the code (typer
commands and their options, the uvicorn app, the Celery app, the Settings fields), so renaming a command,
an option or a setting fails here instead of in a deployment.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

REQUIRED_SERVICES = {"postgres", "redis", "migrate", "api", "worker", "beat"}
NEEDS_HEALTHCHECK = {"postgres", "redis", "api", "worker"}
STARTS_AFTER_MIGRATE = {"api", "worker", "beat"}

# ${NAME}, ${NAME:-default}, ${NAME:?message}, $NAME. "$$" is an escaped dollar and is removed first.
INTERPOLATION = re.compile(r"\$(?:\{(?P<braced>\w+)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")
ESCAPED_DOLLAR = "\0"
# What a user would export for a required variable: long enough for a production secret, URL-safe.
STAND_IN_VALUE = "stand-in-for-a-required-variable-0123456789"

Service = dict[str, Any]
# Usage errors from click, and from the click that newer typer vendors (its errors derive from TyperException).
CLI_USAGE_ERRORS = (click.ClickException, typer.exceptions.TyperException)


# --- reading the files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))  # resolves anchors and << merges
    assert isinstance(compose, dict) and isinstance(compose.get("services"), dict), "no services in compose file"
    return compose["services"]


def _app_services(services: dict[str, Service]) -> dict[str, Service]:
    """The services built from this repository (the others are stock images)."""
    return {name: service for name, service in services.items() if "build" in service}


def _settings_prefix() -> str:
    from youthlink.config import Settings

    return str(Settings.model_config.get("env_prefix", "")).upper()


def _setting_variables() -> set[str]:
    from youthlink.config import Settings

    return {f"{_settings_prefix()}{field}".upper() for field in Settings.model_fields}


def _environment(service: Service) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        return {key: value for key, _, value in (str(item).partition("=") for item in env)}
    return {str(key): None if value is None else str(value) for key, value in env.items()}


def _depends_on(service: Service) -> dict[str, str]:
    """Dependency -> condition; the short list form means service_started."""
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):
        return dict.fromkeys(depends_on, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends_on.items()}


def _strings(node: Any) -> Iterator[str]:
    """Every string value in the parsed compose file (keys are never interpolated)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _interpolated_names(text: str) -> list[str]:
    return [m["braced"] or m["bare"] for m in INTERPOLATION.finditer(text.replace("$$", ESCAPED_DOLLAR))]


def _interpolate(text: str) -> str:
    """Compose's substitution: the default where one is given, a stand-in for what the user must export."""

    def substitute(match: re.Match[str]) -> str:
        rest = match["rest"] or ""
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        return STAND_IN_VALUE

    return INTERPOLATION.sub(substitute, text.replace("$$", ESCAPED_DOLLAR)).replace(ESCAPED_DOLLAR, "$")


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments and blank lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        pending = ""
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _dockerfile_argv(arguments: str) -> list[str]:
    """CMD/ENTRYPOINT arguments: exec form (JSON array) or shell form (run by /bin/sh -c)."""
    if arguments.startswith("["):
        return [str(item) for item in json.loads(arguments)]
    return ["/bin/sh", "-c", arguments]


def _image_default_command() -> list[str]:
    """What the image runs when compose gives no command: ENTRYPOINT + CMD, as Docker combines them."""
    instructions = _dockerfile_instructions()
    entrypoint = [_dockerfile_argv(args) for keyword, args in instructions if keyword == "ENTRYPOINT"]
    cmd = [_dockerfile_argv(args) for keyword, args in instructions if keyword == "CMD"]
    if entrypoint:
        last = entrypoint[-1]
        shell_form = last[:2] == ["/bin/sh", "-c"]
        return last if shell_form else last + (cmd[-1] if cmd else [])
    assert cmd, "the Dockerfile has neither CMD nor ENTRYPOINT"
    return cmd[-1]


# --- commands and entry points -------------------------------------------------------------------------


def _split_shell_script(script: str) -> list[list[str]]:
    """Each program a one-line shell script runs (split on &&, || and ;, enough for compose one-liners)."""
    invocations = []
    for part in re.split(r"&&|\|\||;", script):
        argv = shlex.split(part)
        if argv[:1] == ["exec"]:
            argv = argv[1:]
        if argv:
            invocations.append(argv)
    return invocations


def _invocations(command: str | list[str]) -> list[list[str]]:
    # Compose splits a string command like a shell would but runs it without one; `sh -c` runs a script.
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if len(argv) >= 3 and PurePosixPath(argv[0]).name in {"sh", "bash"} and argv[1] == "-c":
        return _split_shell_script(argv[2])
    return [argv]


def _healthcheck_invocations(test: str | list[str]) -> list[list[str]]:
    if isinstance(test, str):
        return _split_shell_script(test)
    kind, *rest = test
    if kind == "CMD-SHELL":
        return _split_shell_script(" ".join(rest))
    if kind == "CMD":
        return [rest]
    return []  # NONE


def _service_invocations(service: Service) -> list[list[str]]:
    command = service.get("command")
    return _invocations(command) if command is not None else _invocations(_image_default_command())


def _youthlink_command(args: list[str], where: str) -> tuple[str, dict[str, Any]]:
    """Resolve `youthlink <args>` as the CLI would: subcommands, then options parsed (not run).

    Returns the command path without the program ("worker", "admin create") and the parsed parameters.
    """
    from youthlink.cli import app

    # Duck-typed: newer typer vendors its own click, so its groups are not click.Group instances.
    command: Any = typer.main.get_command(app)
    path = ["youthlink"]
    rest = list(args)
    while isinstance(getattr(command, "commands", None), dict):
        assert rest, f"{where}: `{' '.join(path)}` needs a subcommand"
        name, *rest = rest
        assert name in command.commands, (
            f"{where}: `{' '.join(path)}` has no command {name!r} (it has {sorted(command.commands)})"
        )
        command = command.commands[name]
        path.append(name)
    try:
        context = command.make_context(" ".join(path), rest)
    except CLI_USAGE_ERRORS as exc:
        pytest.fail(f"{where}: `{shlex.join([*path, *rest])}`: {exc.format_message()}")
    return " ".join(path[1:]), context.params


def _check_uvicorn(args: list[str], where: str) -> None:
    from uvicorn.main import main as uvicorn_cli

    try:
        context = uvicorn_cli.make_context("uvicorn", list(args))
    except click.ClickException as exc:
        pytest.fail(f"{where}: `uvicorn {shlex.join(args)}`: {exc.format_message()}")
    target = str(context.params["app"])
    module_name, _, attribute = target.partition(":")
    assert attribute, f"{where}: uvicorn target {target!r} is not module:attribute"
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), f"{where}: {module_name} has no ASGI app {attribute!r}"
    # In a container 127.0.0.1 is unreachable from other containers and from the published port.
    assert context.params["host"] in {"0.0.0.0", "::"}, f"{where}: uvicorn must listen on 0.0.0.0"


def _check_celery(args: list[str], where: str) -> None:
    from celery import Celery
    from celery.app.utils import find_app
    from celery.bin.celery import celery as celery_cli

    try:
        context = celery_cli.make_context("celery", list(args))
    except click.ClickException as exc:
        pytest.fail(f"{where}: `celery {shlex.join(args)}`: {exc.format_message()}")
    app_name = context.params.get("app")
    assert app_name, f"{where}: celery without -A names no app"
    assert isinstance(find_app(app_name), Celery), f"{where}: {app_name!r} is not a Celery app"
    subcommand = next((arg for arg in args if arg in celery_cli.commands), None)
    assert subcommand, f"{where}: `celery {shlex.join(args)}` runs no celery subcommand"


def _check_entry_point(argv: list[str], where: str) -> None:
    """The program is one the image provides, and its arguments resolve against the code."""
    assert argv, f"{where}: empty command"
    program, args = PurePosixPath(argv[0]).name, argv[1:]
    if program in {"python", "python3"}:
        if args[:1] == ["-c"] and len(args) >= 2:
            compile(args[1], f"<{where}>", "exec")  # a syntax error fails the test
            return
        assert args[:1] == ["-m"] and len(args) >= 2, f"{where}: python runs neither -m nor -c: {argv}"
        program, args = args[1], args[2:]
    if program == "youthlink":
        _youthlink_command(args, where)
    elif program == "uvicorn":
        _check_uvicorn(args, where)
    elif program == "celery":
        _check_celery(args, where)
    else:
        pytest.fail(f"{where}: {argv[0]!r} is not an entry point of the image: `{shlex.join(argv)}`")


def _youthlink_invocations(services: dict[str, Service]) -> list[tuple[str, str, dict[str, Any]]]:
    """(service, youthlink command path, parsed parameters) for every `youthlink ...` a service runs."""
    found = []
    for name, service in _app_services(services).items():
        for argv in _service_invocations(service):
            if PurePosixPath(argv[0]).name == "youthlink":
                path, params = _youthlink_command(argv[1:], f"service {name}")
                found.append((name, path, params))
    return found


# --- compose --------------------------------------------------------------------------------------------


def test_required_services_exist(services: dict[str, Service]) -> None:
    assert REQUIRED_SERVICES <= services.keys(), f"missing services: {sorted(REQUIRED_SERVICES - services.keys())}"
    assert {"migrate", "api", "worker", "beat"} <= _app_services(services).keys(), "app services must be built here"


def test_services_that_need_it_have_a_health_check(services: dict[str, Service]) -> None:
    for name in NEEDS_HEALTHCHECK:
        healthcheck = services[name].get("healthcheck") or {}
        test = healthcheck.get("test")
        assert test and not healthcheck.get("disable"), f"{name} has no health check"
        assert _healthcheck_invocations(test), f"{name}'s health check runs nothing"


def test_stock_services_keep_their_data(services: dict[str, Service]) -> None:
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert services["postgres"].get("volumes"), "postgres without a volume loses the database on recreate"
    assert "pg_isready" in json.dumps(services["postgres"]["healthcheck"]["test"])
    assert str(services["redis"]["image"]).startswith("redis:7")
    redis_argv = _invocations(services["redis"].get("command") or [])[0]
    # Without the append-only file, queued jobs are lost when Redis restarts.
    assert "--appendonly" in redis_argv and redis_argv[redis_argv.index("--appendonly") + 1] == "yes"
    assert "ping" in json.dumps(services["redis"]["healthcheck"]["test"])


def test_every_app_command_is_a_real_entry_point(services: dict[str, Service]) -> None:
    for name, service in _app_services(services).items():
        for argv in _service_invocations(service):
            _check_entry_point(argv, f"service {name}")
        healthcheck = service.get("healthcheck") or {}
        if healthcheck.get("test"):
            for argv in _healthcheck_invocations(healthcheck["test"]):
                _check_entry_point(argv, f"service {name} health check")


def test_each_service_runs_its_process(services: dict[str, Service]) -> None:
    commands = {name: [path for service, path, _ in _youthlink_invocations(services) if service == name]
                for name in _app_services(services)}
    assert commands["migrate"][:2] == ["migrate", "seed"], "migrate must run `youthlink migrate` then `youthlink seed`"
    assert "worker" in commands["worker"]
    assert "beat" in commands["beat"]
    assert "uvicorn" in json.dumps(services["api"].get("command") or _image_default_command())
    assert "/health" in json.dumps(services["api"]["healthcheck"]["test"])


def test_workers_serve_every_queue_and_only_real_ones(services: dict[str, Service]) -> None:
    from youthlink.workers.app import QUEUES

    served: set[str] = set()
    for name, path, params in _youthlink_invocations(services):
        if path == "worker":
            queues = {queue.strip() for queue in str(params["queues"]).split(",") if queue.strip()}
            assert queues <= set(QUEUES), f"service {name} serves unknown queues {sorted(queues - set(QUEUES))}"
            served |= queues
    # A queue no worker serves fills up silently.
    assert served == set(QUEUES), f"no worker serves {sorted(set(QUEUES) - served)}"


def test_exactly_one_beat(services: dict[str, Service]) -> None:
    # Two beats would enqueue every periodic job twice.
    beats = [name for name, path, _ in _youthlink_invocations(services) if path == "beat"]
    assert beats == ["beat"], f"beat must run in exactly one service, runs in {beats}"
    beat = services["beat"]
    assert (beat.get("deploy") or {}).get("replicas", 1) == 1 and beat.get("scale", 1) == 1


def test_start_order(services: dict[str, Service]) -> None:
    for name in STARTS_AFTER_MIGRATE:
        condition = _depends_on(services[name]).get("migrate")
        assert condition == "service_completed_successfully", f"{name} must wait for migrate to succeed"
    assert _depends_on(services["migrate"]).get("postgres") == "service_healthy"
    # A one-shot under `restart: always/unless-stopped` would run again after succeeding, forever.
    restart = str(services["migrate"].get("restart", "no"))
    assert restart == "no" or restart.startswith("on-failure"), f"migrate must not restart after success: {restart}"


def test_environment_variables_are_real_settings(services: dict[str, Service]) -> None:
    prefix, known = _settings_prefix(), _setting_variables()
    for name, service in services.items():
        unknown = {key for key in _environment(service) if key.upper().startswith(prefix) and key.upper() not in known}
        assert not unknown, f"service {name} sets {sorted(unknown)}, which are not fields of Settings"


def test_interpolated_variables_are_real_settings(services: dict[str, Service]) -> None:
    prefix, known = _settings_prefix(), _setting_variables()
    names = {name for text in _strings(services) for name in _interpolated_names(text)}
    unknown = {name for name in names if name.upper().startswith(prefix) and name.upper() not in known}
    assert not unknown, f"the compose file interpolates {sorted(unknown)}, which are not fields of Settings"


def test_app_environment_is_valid_production_settings(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    from youthlink.config import Settings

    prefix = _settings_prefix()
    for name, service in _app_services(services).items():
        environment = _environment(service)
        # The secret comes from the user's environment, required: never a value or a default in the file.
        secret = environment.get(f"{prefix}SECRET_KEY") or ""
        assert re.fullmatch(rf"\$\{{{prefix}SECRET_KEY:\?[^}}]*\}}", secret), f"{name}: secret key must be ${{...:?}}"
        # Settings as the container would build them, with nothing from this test run's environment.
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                if key.upper().startswith(prefix):
                    patch.delenv(key)
            for key, value in environment.items():
                if value is not None:
                    patch.setenv(key, _interpolate(value))
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.env == "production", f"{name} must run with {prefix}ENV=production"
        assert not settings.embedded and settings.broker_url, f"{name} must use the postgres and redis services"
        assert "@postgres:" in str(settings.database_url) and "redis:" in str(settings.broker_url)


# --- Dockerfile and .dockerignore ----------------------------------------------------------------------


def test_dockerfile_default_command_is_a_real_entry_point() -> None:
    for argv in _invocations(_image_default_command()):
        _check_entry_point(argv, "Dockerfile CMD")


def test_dockerfile_builds_a_lean_unprivileged_image() -> None:
    instructions = _dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    base = [args for keyword, args in instructions if keyword == "FROM"][-1]
    assert base.split()[0].startswith("python:3.11-slim")
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    assert any("8000" in args.split() for keyword, args in instructions if keyword == "EXPOSE")

    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any(re.search(r"pip install\b.*\s\.(\s|$)", run) for run in runs), "the image must `pip install .`"
    assert not any(re.search(r"pip install\b.*\.\[", run) for run in runs), "no dev/test extras in the image"

    # Cache: dependencies are installed from pyproject.toml before the code is copied in.
    copies = [(index, args) for index, (keyword, args) in enumerate(instructions) if keyword in {"COPY", "ADD"}]
    first_pyproject = min(index for index, args in copies if "pyproject.toml" in args)
    first_code = min(index for index, args in copies if re.search(r"(^|\s)(\./)?youthlink/?(\s|$)", args) or
                     args.split()[0] in {".", "./"})
    assert first_pyproject < first_code
    assert "RUN" in keywords[first_pyproject:first_code], "install the dependencies before copying the code"


def test_dockerfile_environment_variables_are_real_settings() -> None:
    prefix, known = _settings_prefix(), _setting_variables()
    for keyword, args in _dockerfile_instructions():
        if keyword != "ENV":
            continue
        tokens = shlex.split(args)
        keys = [token.partition("=")[0] for token in tokens] if "=" in tokens[0] else tokens[:1]
        unknown = {key for key in keys if key.upper().startswith(prefix) and key.upper() not in known}
        assert not unknown, f"the Dockerfile sets {sorted(unknown)}, which are not fields of Settings"


def test_youthlink_program_is_installed_by_pyproject() -> None:
    # `youthlink ...` in the compose file exists only because pyproject installs this script.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    module_name, _, attribute = scripts["youthlink"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_dockerignore_keeps_secrets_and_local_data_out() -> None:
    entries = {
        line.strip().removeprefix("**/").strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    # .env may hold the secret key; .youthlink holds the embedded database and a generated secret.
    assert {".git", ".env", ".youthlink"} <= entries
