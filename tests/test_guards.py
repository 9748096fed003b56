"""The GraphQL guards, each through the real HTTP app (uvicorn in its own process): depth, alias and token
limits, the `first` cap, no batching, no mutations over GET, a request body limit, masked unexpected errors
with readable validation messages, and the IDE and introspection off in production."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
import strawberry
from fastapi import FastAPI
from graphql import ASTValidationRule, parse, validate
from strawberry.extensions import AddValidationRules, MaskErrors, QueryDepthLimiter
from strawberry.fastapi import GraphQLRouter

from tests import factories
from tests import services as svc
from youthlink.config import Settings
from youthlink.domain.pagination import encode_cursor
from youthlink.graphql import schema as graphql_schema
from youthlink.graphql.schema import MASKED_MESSAGE, GuardedSchema, build_schema, should_mask

ONE_MIB = 1024 * 1024
INTROSPECTION = "{ __schema { queryType { name } } }"


# Helpers


def parents(depth: int) -> str:
    """Organizations with `depth` levels of parent: the operation's depth is depth + 3."""
    return "{ organizations(first: 1) { edges { node { " + "parent { " * depth + "name" + " }" * depth + " } } } }"


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


def messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body.get("errors", [])]


async def post(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def no_exception_text(response: httpx.Response) -> None:
    """Nothing of a Python exception reaches the client."""
    for marker in ("Traceback", "KeyError", "Error:", 'File "', "stacktrace", "exception"):
        assert marker not in response.text, response.text


def started_api(services: svc.Services, name: str, env: str) -> Iterator[tuple[str, Any]]:
    """A second API process with YOUTHLINK_ENV=env; stopped (only this one) when the module is done."""
    url = svc.start_api(services, name=name, YOUTHLINK_ENV=env)
    process: subprocess.Popen[bytes] = services.processes[-1]
    yield url, services.folder / f"{name}.log"
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    services.processes.remove(process)


@pytest.fixture(scope="module")
def dev_api(services: svc.Services) -> Iterator[tuple[str, Any]]:
    yield from started_api(services, "api-guards-dev", "dev")


@pytest.fixture(scope="module")
def production_api(services: svc.Services) -> Iterator[tuple[str, Any]]:
    yield from started_api(services, "api-guards-production", "production")


@pytest.fixture
async def dev(dev_api: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dev_api[0], timeout=60) as client:
        yield client


@pytest.fixture
async def production(production_api: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=production_api[0], timeout=60) as client:
        yield client


# Depth, alias and token limits: refused with their readable messages


async def test_depth_limit(http: httpx.AsyncClient) -> None:
    # given the default limit of 12
    assert Settings().graphql_max_depth == 12

    # when / then: depth 12 runs, depth 13 is refused before anything is resolved
    assert "errors" not in await post(http, parents(9))
    body = await post(http, parents(10))
    assert body["data"] is None
    assert messages(body) == ["'anonymous' exceeds maximum operation depth of 12"]


async def test_alias_limit(http: httpx.AsyncClient) -> None:
    assert Settings().graphql_max_aliases == 30
    assert "errors" not in await post(http, aliases(30))
    body = await post(http, aliases(31))
    assert body["data"] is None
    assert messages(body) == ["31 aliases found. Allowed: 30"]


async def test_token_limit(http: httpx.AsyncClient) -> None:
    limit = Settings().graphql_max_tokens
    assert limit == 1000

    def skills(count: int) -> str:  # 16 tokens around the list
        return "{ tasks(filter: {skills: [" + ' "x"' * count + "]}) { totalCount } }"

    # `limit` tokens are parsed and validated: the resolver refuses the list itself
    body = await post(http, skills(limit - 16))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["TOO_MANY_SKILLS"], body
    body = await post(http, skills(limit + 1 - 16))
    assert body["data"] is None
    assert messages(body) == [f"Syntax Error: Document contains more than {limit} tokens. Parsing aborted."]


async def test_first_is_capped_at_100(http: httpx.AsyncClient) -> None:
    assert "errors" not in await post(http, "{ tasks(first: 100) { totalCount } }")
    for field in ("tasks", "organizations"):
        body = await post(http, "{ " + field + "(first: 101) { totalCount } }")
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_PAGE_SIZE", error
        assert error["path"] == [field]


async def test_unknown_field_message_is_kept(http: httpx.AsyncClient) -> None:
    body = await post(http, "{ nope }")
    assert messages(body) == ["Cannot query field 'nope' on type 'Query'. Did you mean 'node'?"]


# Transport: no batching, no mutations over GET


async def test_batching_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert response.status_code == 400
    assert response.text == "Batching is not enabled"


async def test_mutation_over_get_is_refused(http: httpx.AsyncClient, db: Any, clean: None) -> None:
    # given a valid registration
    phone = factories.next_phone()
    mutation = ("mutation($input: RegisterVolunteerInput!) { registerVolunteer(input: $input) { token "
                "errors { code } } }")
    variables = {"input": {"name": "林晓", "phone": phone, "password": factories.PASSWORD,
                           "birthDate": "2001-05-04"}}
    # when it is sent over GET
    response = await http.get("/graphql", params={"query": mutation, "variables": orjson.dumps(variables).decode()})

    # then it is refused and nothing is written
    assert response.status_code == 400
    assert response.text == "mutations are not allowed when using GET"
    login = await post(http, "mutation($input: LoginInput!) { login(input: $input) { token errors { code } } }",
                       input={"phone": phone, "password": factories.PASSWORD})
    assert login["data"]["login"]["token"] is None

    # and queries over GET still work; the same mutation over POST is accepted
    assert (await http.get("/graphql", params={"query": "{ __typename }"})).json() == {"data": {"__typename": "Query"}}
    body = await post(http, mutation, **variables)
    assert body["data"]["registerVolunteer"]["token"], body


# Request body size


async def test_body_over_the_limit_is_refused_with_413(http: httpx.AsyncClient) -> None:
    padding = "x" * ONE_MIB

    # a declared Content-Length over the limit
    response = await http.post("/graphql", json={"query": "{ __typename }", "variables": {"pad": padding}})
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"

    # a chunked body (no Content-Length) that crosses the limit
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(32):
            yield b"x" * (64 * 1024)
        yield b'"}}'

    response = await http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"

    # a request just under the limit still works, chunked or not
    body = {"query": "{ __typename }", "variables": {"pad": "x" * (ONE_MIB - 100)}}
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}

    async def small() -> AsyncIterator[bytes]:
        yield b'{"query": '
        yield b'"{ __typename }"}'

    response = await http.post("/graphql", content=small(), headers={"content-type": "application/json"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_upload_prefix_has_the_larger_limit(http: httpx.AsyncClient) -> None:
    # 2 MiB passes the limit under /imports (no route there yet: 404, not 413) ...
    response = await http.post("/imports/no-such-route", content=b"x" * (2 * ONE_MIB))
    assert response.status_code == 404
    # ... while 10 MiB + 1 does not; /importsx is not under the prefix
    response = await http.post("/imports/no-such-route", content=b"x" * (10 * ONE_MIB + 1))
    assert response.status_code == 413
    response = await http.post("/importsx", content=b"x" * (2 * ONE_MIB))
    assert response.status_code == 413


# No raw exception text reaches a client


@pytest.mark.parametrize("query", [
    "{ ...Nope }",
    "query Q { towns { ...Nope } }",
    "fragment F on Query { ...Nope } { ...F }",
])
async def test_unknown_fragment_is_a_validation_error(http: httpx.AsyncClient, query: str) -> None:
    """strawberry's depth limiter raised KeyError('Nope') here and the client read `'Nope'`."""
    for response in (await http.post("/graphql", json={"query": query}),
                     await http.get("/graphql", params={"query": query})):
        assert response.status_code == 200
        no_exception_text(response)
        assert messages(response.json()) == ["Unknown fragment 'Nope'."]


async def test_unexpected_resolver_error_is_masked_and_logged(dev: httpx.AsyncClient,
                                                              dev_api: tuple[str, Any]) -> None:
    # given a cursor that decodes, but whose NUL character PostgreSQL refuses in a text parameter
    cursor = encode_cursor(["a\x00b", uuid.uuid4()])
    log = dev_api[1]
    before = log.read_text(errors="replace")

    # when it is used
    response = await dev.post("/graphql", json={
        "query": "query($after: String) { organizations(after: $after) { totalCount } }",
        "variables": {"after": cursor}})

    # then the client reads only the masked message, with its path
    assert response.status_code == 200
    no_exception_text(response)
    [error] = response.json()["errors"]
    assert error == {"message": MASKED_MESSAGE, "locations": error["locations"], "path": ["organizations"]}

    # and the server log has the exception and its traceback
    logged = log.read_text(errors="replace")[len(before):]
    assert "Traceback" in logged and "CharacterNotInRepertoireError" in logged, logged[-2000:]


class ExplodingRule(ASTValidationRule):
    """Stands for any bug in a parse or validation step: strawberry lets it escape MaskErrors."""

    def enter_document(self, *_: Any) -> None:
        raise KeyError("secret detail")


@strawberry.type
class TinyQuery:
    @strawberry.field
    def fine(self) -> str:
        return "ok"

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("secret detail")


async def test_exceptions_outside_execution_are_masked_too() -> None:
    """GuardedSchema applies should_mask to the final result; a plain Schema leaks the text."""
    extensions: list[Any] = [partial(AddValidationRules, [ExplodingRule]),
                             partial(MaskErrors, should_mask_error=should_mask, error_message=MASKED_MESSAGE)]
    for schema_class, leaks in ((strawberry.Schema, True), (GuardedSchema, False)):
        app = FastAPI()
        app.include_router(GraphQLRouter(schema_class(query=TinyQuery, extensions=extensions)), prefix="/graphql")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.post("/graphql", json={"query": "{ fine }"})
        assert ("secret detail" in response.text) is leaks, response.text
        if not leaks:
            assert messages(response.json()) == [MASKED_MESSAGE]


async def test_masking_policy_in_execution() -> None:
    """An exception in a resolver is masked; a GraphQLError (a validation or a refusal) is not."""
    schema = GuardedSchema(query=TinyQuery, extensions=[
        partial(MaskErrors, should_mask_error=should_mask, error_message=MASKED_MESSAGE)])
    result = await schema.execute("{ broken }")
    assert [e.message for e in result.errors or []] == [MASKED_MESSAGE]
    result = await schema.execute("{ nope }")
    assert [e.message for e in result.errors or []] == ["Cannot query field 'nope' on type 'TinyQuery'."]


def test_upstream_depth_limiter_still_needs_the_fragment_guard() -> None:
    """If this fails, strawberry fixed `{ ...Nope }` in QueryDepthLimiter and `unless_fragments_unknown` can go."""
    [rule] = QueryDepthLimiter(max_depth=3).validation_rules
    schema = build_schema(Settings(env="test"))._schema
    with pytest.raises(KeyError):
        validate(schema, parse("{ ...Nope }"), [rule])


async def test_validation_cache_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard rules are built once per schema, so the validation cache hits (it never did: the limiter
    extensions made new rule classes per request, and the cache is keyed by them); it is keyed by the query's
    text (TextValidationCache), so a repeated query is not validated again."""
    schema = build_schema(Settings(env="test"))
    query = "{ t" + uuid.uuid4().hex + ": __typename }"
    assert not (await schema.execute(query)).errors
    validations: list[Any] = []
    monkeypatch.setattr(graphql_schema, "validate_document", lambda *args: validations.append(args) or [])
    assert not (await schema.execute(query)).errors
    assert validations == []


# Production: no IDE, no introspection; both available outside production


async def test_ide_and_introspection_off_in_production(production: httpx.AsyncClient) -> None:
    response = await production.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()

    body = await post(production, INTROSPECTION)
    assert body["data"] is None
    assert messages(body)[0] == (
        "GraphQL introspection has been disabled, but the requested query contained the field '__schema'.")
    body = await post(production, '{ __type(name: "Query") { name } }')
    assert body["data"] is None

    # ordinary queries, and __typename, still work
    body = await post(production, "{ __typename towns { name } }")
    assert "errors" not in body and body["data"]["towns"], body


async def test_ide_and_introspection_on_in_dev(dev: httpx.AsyncClient) -> None:
    response = await dev.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    body = await post(dev, INTROSPECTION)
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
