"""The schema is the product's contract: committed, in step with the code, answering every client operation."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import parse, validate

from youthlink.graphql.schema import build_schema, schema_sdl

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
SHARED_CLIENTS = ROOT.parent / "shared" / "clients"


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "youthlink" / "graphql" / "schema.graphql").read_text()
    assert committed == schema_sdl(), "drifted: run `youthlink schema > youthlink/graphql/schema.graphql`"


@pytest.mark.parametrize("path", sorted(CLIENTS.glob("*.graphql")), ids=lambda p: p.name)
def test_every_client_operation_validates(path: Path) -> None:
    errors = validate(build_schema()._schema, parse(path.read_text()))
    assert errors == [], [e.message for e in errors]


@pytest.mark.skipif(not SHARED_CLIENTS.exists(), reason="no shared/ checkout beside the project")
def test_clients_are_a_faithful_copy_of_the_shared_contract() -> None:
    ours = {p.name: p.read_text() for p in CLIENTS.glob("*.graphql")}
    theirs = {p.name: p.read_text() for p in SHARED_CLIENTS.glob("*.graphql")}
    assert ours == theirs
