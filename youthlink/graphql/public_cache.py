"""A short-lived cache of public answers: task listings and the towns, as anyone without a staff role sees them.

Browsing open tasks is most of the API's traffic and the answer is the same for every volunteer and for
anonymous visitors: only drafts are hidden, and only people who run tasks may see those. So a query whose
every field is public (PUBLIC_FIELDS: no sign-ups, no check-in codes, nothing that depends on the viewer),
asked by a viewer without a staff role, is answered once and then served from memory, keyed by the query,
the operation and the variables.

It is correct only while it hears every change, and so:
- PostgreSQL tells it: triggers on the tables these fields read (migration 0008) notify the channel
  `youthlink_public_data` at every committed change, whoever makes it (the API, workers, the CLI, psql);
  each API process listens on a connection of its own and empties its cache on each notification;
- a mutation run by this process empties it too, before its response goes out;
- an answer computed while a change arrived is not kept (the generation moved on meanwhile);
- while the listening connection is down nothing is cached, and an answer lives at most `ttl` seconds. A
  connection closed by PostgreSQL is noticed at once; one that dies silently (a network fault) within about
  2 x `ttl`, so answers are then at worst about 3 x `ttl` old.
Staff (city and organization admins, team leaders) always get a fresh answer: they may see drafts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    visit,
)
from sqlalchemy import make_url

from youthlink.domain.actor import Actor

log = logging.getLogger(__name__)

CHANNEL = "youthlink_public_data"
# The longest document whose answers are kept. The clients' operations are under 1 KB (their whole files under
# 3 KB); comments are not tokens, so the token limit lets a document of a megabyte through, and kept as a key
# in the answers and the documents (max_entries of each) such texts would hold a gigabyte.
MAX_QUERY_CHARS = 16 * 1024
# The tables the public fields read; migration 0008 puts the notifying trigger on each.
WATCHED_TABLES = ("tasks", "towns", "organizations", "projects", "teams")

# Fields whose value is the same for every viewer without a staff role (and for anonymous ones).
PUBLIC_FIELDS: Mapping[str, frozenset[str]] = {
    "Query": frozenset({"tasks", "towns"}),
    "TaskCountedConnection": frozenset({"pageInfo", "edges", "totalCount"}),
    "TaskEdge": frozenset({"cursor", "node"}),
    "PageInfo": frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}),
    "Task": frozenset({
        "id", "title", "description", "startsAt", "endsAt", "signupDeadline", "slots", "filledSlots", "status",
        "assignmentMode", "requiredSkills", "minAge", "checkinRadiusM", "location", "distanceKm", "matchRadiusKm",
        "organization", "town", "project", "team",
    }),
    "Location": frozenset({"address", "lat", "lng"}),
    "Town": frozenset({"id", "name", "kind"}),
    "Organization": frozenset({"id", "name", "kind", "description", "illustrative", "parent", "town"}),
    "Project": frozenset({"id", "name", "description", "owner"}),
    "Team": frozenset({"id", "name", "isCommando", "activeFrom", "activeUntil", "organization"}),
}


def public_operation(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> bool:
    """True when the operation is a query selecting public fields only (through the fragments it uses)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return False
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    pending: list[OperationDefinitionNode | FragmentDefinitionNode] = [chosen[0]]
    seen: set[str] = set()
    while pending:
        type_info = TypeInfo(schema)
        checker = _PublicFields(type_info)
        visit(pending.pop(), TypeInfoVisitor(type_info, checker))
        if not checker.public:
            return False
        for name in checker.spreads - seen:
            if name not in fragments:
                return False
            seen.add(name)
            pending.append(fragments[name])
    return True


class _PublicFields(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.public = True
        self.spreads: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        name = node.name.value
        if name == "__typename":
            return
        parent = self.type_info.get_parent_type()
        if parent is None or name not in PUBLIC_FIELDS.get(parent.name, frozenset()):
            self.public = False

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.spreads.add(node.name.value)


class PublicResponseCache:
    """Answers to public queries, emptied at every change it hears of (see the module's docstring)."""

    def __init__(self, schema: GraphQLSchema, *, ttl: float = 5.0, max_entries: int = 1024,
                 max_tokens: int | None = None) -> None:
        self.schema = schema
        # The schema's token limit (settings.graphql_max_tokens): the cache reads a request's document before
        # the schema's MaxTokensLimiter does, and must not parse and walk a larger one in full first.
        self.max_tokens = max_tokens
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self.listening = False
        self._answers: dict[tuple[str, str | None, bytes], tuple[int, float, Any]] = {}
        self._documents: dict[tuple[str, str | None], bool] = {}
        self._task: asyncio.Task[None] | None = None

    # The cache's lookups

    def key(self, query: str | None, operation_name: str | None, variables: Mapping[str, Any] | None,
            actor: Actor) -> tuple[str, str | None, bytes] | None:
        """The key of a cacheable request, or None (nothing cached: staff, private fields, not listening)."""
        if not self.listening or query is None or actor.is_staff or len(query) > MAX_QUERY_CHARS:
            return None
        if not self._is_public(query, operation_name):
            return None
        try:
            return query, operation_name, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None

    def get(self, key: tuple[str, str | None, bytes]) -> Any:
        found = self._answers.get(key)
        if found is None:
            return None
        generation, expires, answer = found
        if generation != self.generation or expires < time.monotonic():
            self._answers.pop(key, None)
            return None
        return answer

    def put(self, key: tuple[str, str | None, bytes], generation: int, answer: Any) -> None:
        """Keep an answer computed since `generation` began, unless a change arrived meanwhile."""
        if generation != self.generation or not self.listening:
            return
        if len(self._answers) >= self.max_entries:
            self._answers.clear()
        self._answers[key] = (generation, time.monotonic() + self.ttl, answer)

    def invalidate(self) -> None:
        self.generation += 1
        self._answers.clear()

    def _is_public(self, query: str, operation_name: str | None) -> bool:
        found = self._documents.get((query, operation_name))
        if found is None:
            try:
                found = public_operation(self.schema, parse(query, max_tokens=self.max_tokens), operation_name)
            except GraphQLError:
                found = False
            if len(self._documents) >= self.max_entries:
                self._documents.clear()
            self._documents[(query, operation_name)] = found
        return found

    # Hearing of changes

    async def start(self, database_url: str) -> None:
        self._task = asyncio.create_task(self._listen(database_url), name="public-cache-listener")

    async def stop(self) -> None:
        self.listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self, database_url: str) -> None:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 1.0
        while True:
            lost = asyncio.Event()
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(dsn, server_settings={"application_name": "youthlink-cache"})
                connection.add_termination_listener(lambda _, lost=lost: lost.set())  # type: ignore[misc]
                await connection.add_listener(CHANNEL, lambda *_: self.invalidate())
                self.invalidate()  # whatever changed while nobody listened
                self.listening, delay = True, 1.0
                while not lost.is_set():
                    # A connection dropped without a word is found by asking (see the module's docstring).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=self.ttl)
                    if not lost.is_set():
                        await asyncio.wait_for(connection.execute("SELECT 1"), timeout=self.ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("public answers not cached: change notifications unavailable (%s)", type(exc).__name__)
            finally:
                self.listening = False
                self.invalidate()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
