"""The lean executor (youthlink.graphql.execution) answers exactly as graphql-core does: data, errors, paths."""

from __future__ import annotations

import enum
import gc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import strawberry
from sqlalchemy import insert
from strawberry import relay
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from tests import factories
from tests.conftest import operation
from youthlink.config import Settings
from youthlink.db.models import Signup
from youthlink.db.models.enums import SignupStatus
from youthlink.domain import accounts
from youthlink.graphql.context import Context
from youthlink.graphql.execution import LeanExecutionContext
from youthlink.graphql.schema import build_schema
from youthlink.graphql.types import CITY_DATETIME


def answer(result: Any) -> bytes:
    errors = sorted((e.formatted for e in result.errors or []), key=lambda e: orjson.dumps(e))
    return orjson.dumps({"data": result.data, "errors": errors})


# A small schema whose plain fields go wrong in every way the executor distinguishes.

# Some cases hand both executors awaitables that a failing sibling makes them abandon, as graphql-core does.
pytestmark = [pytest.mark.filterwarnings("ignore:coroutine '_soon' was never awaited:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(autouse=True)
def collect_abandoned_awaitables() -> Iterator[None]:
    """Collected here, so their warnings fall under this module's filters, not under a later test's."""
    yield
    gc.collect()


@strawberry.enum
class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


class Nobody(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Leaf:
    name: str | None
    count: int
    tags: list[str]
    maybe_tags: list[str | None] | None
    shade: Shade = Shade.DARK
    at: datetime = datetime(2030, 1, 1, 1, 30, tzinfo=UTC)  # CITY_DATETIME: 09:30+08:00
    extra: JSON | None = None  # a scalar whose serializer passes anything through


@strawberry.type
class Thing(relay.Node):
    id: relay.NodeID[str]
    label: str
    leaf: Leaf
    maybe_leaf: Leaf | None
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None]

    @strawberry.field
    def failing(self) -> str | None:
        raise ValueError("no")

    @strawberry.field
    def failing_required(self) -> str:
        raise ValueError("no")

    @strawberry.field
    async def later(self) -> Leaf:
        return self.leaf

    # with permission classes (a field extension): never read as a plain attribute
    secret: str | None = strawberry.field(default="s", permission_classes=[Nobody])

    @strawberry.field
    def shout(self) -> str:  # a plain sync resolver (the executor calls it directly)
        return self.label.upper()

    @strawberry.field
    def leaf_soon(self) -> Leaf | None:  # a sync resolver returning an awaitable
        return _soon(self.leaf)

    @strawberry.field
    def itself(self) -> relay.Node:  # an abstract type: graphql-core's path
        return self


async def _soon(value: Any) -> Any:
    return value


def leaf(name: str | None = "a", count: Any = 1, tags: Any = ("x",), maybe_tags: Any = None) -> Leaf:
    return Leaf(name=name, count=count, tags=list(tags), maybe_tags=maybe_tags)


def thing(**overrides: Any) -> Thing:
    values: dict[str, Any] = dict(id="1", label="t", leaf=leaf(), maybe_leaf=None, leaves=[leaf(), leaf("b")],
                                  maybe_leaves=[leaf(), None])
    values.update(overrides)
    return Thing(**values)


SOURCES: dict[str, Any] = {
    "fine": thing(),
    "non-null leaf null": thing(label=None),
    "leaf of the wrong type": thing(leaf=leaf(count="many")),
    "null in a non-null object": thing(leaf=None),
    "null item in a non-null list": thing(leaves=[leaf(), None]),
    "wrong object in a list": thing(leaves=[leaf(), "oops"]),
    "null in a nested non-null leaf": thing(leaves=[leaf(), Leaf(name="c", count=None, tags=[], maybe_tags=None)]),
    "null item in a list of non-null strings": thing(leaf=leaf(tags=["x", None])),
    "nullable list items": thing(maybe_leaf=leaf(maybe_tags=["y", None])),
    # graphql-core refuses a string or a mapping where a list is due (is_iterable); the items must not be its
    # characters or keys
    "a string where a list of strings is due": thing(leaf=Leaf(name="a", count=1, tags="xy", maybe_tags=None)),
    "a mapping where a list of strings is due": thing(leaf=Leaf(name="a", count=1, tags={"k": 1},
                                                                maybe_tags=None)),
    # a one-shot iterable (made afresh for each executor): a null item in it must null the parent, not be
    # half-consumed by the short way and then read as empty by graphql-core's
    "a generator with a null item": lambda: thing(leaf=Leaf(name="a", count=1, tags=(t for t in ["x", None]),
                                                            maybe_tags=None)),
    "an enum value of another enum": thing(leaf=Leaf(name="a", count=1, tags=[], maybe_tags=None, shade="dark")),
    "a time without a zone": thing(leaf=Leaf(name="a", count=1, tags=[], maybe_tags=None, at=datetime(2030, 1, 1))),
    "a string for a time": thing(leaf=Leaf(name="a", count=1, tags=[], maybe_tags=None, at="tomorrow")),
    # a plain attribute holding an awaitable: graphql-core awaits it (Leaf has no is_type_of to refuse it)
    "an awaitable where an object is due": lambda: thing(leaf=_soon(leaf("soon"))),
    "awaitables in a list of objects": lambda: thing(leaves=[leaf(), _soon(leaf("soon"))],
                                                     maybe_leaves=[_soon(None), _soon(leaf("later"))]),
    "an awaitable where a leaf is due": lambda: thing(leaf=Leaf(name=_soon("soon"), count=1, tags=[_soon("x")],
                                                                maybe_tags=None)),
    "an awaitable where a JSON value is due": lambda: thing(leaf=Leaf(name="a", count=1, tags=[], maybe_tags=None,
                                                                       extra=_soon({"k": [1]}))),
    "a generator of strings": lambda: thing(leaf=Leaf(name="a", count=1, tags=(t for t in ["x", "y"]),
                                                      maybe_tags=None)),
}
QUERY = """{ things {
  id label failing later { name count }
  leaf { name count tags maybeTags } maybeLeaf { name maybeTags }
  leaves { name count tags } maybeLeaves { name }
  ... on Thing { alias: label }
} }"""
# Aliases, fragments merging an object's sub-selections, @include/@skip on leaves and objects, __typename,
# enums, the city's DateTime, a permission, plain sync resolvers (one returning an awaitable), abstract types.
SHAPES = """query($yes: Boolean = true, $no: Boolean = false) { things {
  __typename id first: label label shout secret
  leaf { name shade at extra __typename } ...More
  skipped: leaf @skip(if: $yes) { name } included: leaf @include(if: $yes) { count }
  leaves { name @include(if: $no) count @skip(if: $no) shade }
  leafSoon { name tags } itself { __typename id ... on Thing { label leaf { count } } }
  maybeLeaves { ... on Leaf { name } }
} }
fragment More on Thing { leaf { count tags at } alias: leaves { name } }"""
# A non-null field failing nulls each thing (the list's items are nullable); QUERY's failing field is nullable.
QUERIES = {"nullable failure": QUERY, "non-null failure": QUERY.replace("failing", "failingRequired"),
           "shapes": SHAPES}


@pytest.mark.parametrize("query", list(QUERIES))
@pytest.mark.parametrize("case", list(SOURCES))
async def test_plain_fields_fail_as_in_graphql_core(case: str, query: str) -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def things(self) -> list[Thing | None]:  # one bad thing nulls itself, not the answer
            source = SOURCES[case]
            return [source() if callable(source) else source, thing(id="2")]

    lean = strawberry.Schema(Query, execution_context_class=LeanExecutionContext,
                             scalar_overrides={datetime: CITY_DATETIME})
    plain = strawberry.Schema(Query, execution_context_class=StrawberryGraphQLCoreExecutionContext,
                              scalar_overrides={datetime: CITY_DATETIME})
    lean_answer = answer(await lean.execute(QUERIES[query]))
    assert lean_answer == answer(await plain.execute(QUERIES[query]))
    # (a query whose answer is always `data: null` would compare nothing but its first error)
    assert b'"things":[' in lean_answer, lean_answer


async def test_client_operations_answer_the_same(db: Any, clean: None) -> None:
    # given tasks, sign-ups and a volunteer who has some
    admin, _ = await factories.admin(db)
    tasks = [await factories.task(db, admin, slots=5) for _ in range(3)]
    volunteers = await factories.many_volunteers(db, 3)
    async with db.unit_of_work() as session:
        await session.execute(insert(Signup), [
            {"id": uuid.uuid4(), "task_id": t.id, "volunteer_id": v, "status": SignupStatus.CONFIRMED}
            for t in tasks for v, _ in volunteers])
    lean = build_schema(Settings(env="test"))
    plain = build_schema(Settings(env="test"))
    plain.execution_context_class = StrawberryGraphQLCoreExecutionContext
    async with db.read() as session:
        viewer = await accounts.actor_from_token(session, volunteers[0][1])
    roster = {"id": relay.to_base64("Task", str(tasks[0].id))}

    # when each query runs under both executors, then the answers are identical
    for actor, name, variables in ((viewer, "OpenTasks", {"first": 2}), (viewer, "Me", {}), (viewer, "Towns", {}),
                                   (admin, "TaskRoster", roster), (admin, "OrganizationNetwork", {})):
        answers = []
        for schema in (lean, plain):
            context = Context(db=db, actor=actor)
            try:
                answers.append(answer(await schema.execute(operation(name), variable_values=variables,
                                                           context_value=context)))
            finally:
                await context.reads.close()
        assert answers[0] == answers[1], name
        assert b'"errors":[]' in answers[0], answers[0][:500]
