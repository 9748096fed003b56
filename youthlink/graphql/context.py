"""Per-request context: the database, who is asking, and this request's DataLoaders."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from youthlink.db.uow import Database, RequestReads
from youthlink.domain.actor import Actor
from youthlink.domain.throttle import LoginThrottle
from youthlink.graphql.loaders import Loaders


@dataclass
class Context(BaseContext):
    db: Database
    actor: Actor
    loaders: Loaders = field(init=False)
    client_address: str = ""
    throttle: LoginThrottle | None = None
    # The request's read session, shared in turns by its root fields and loader batches; whoever made the
    # context closes it when the request ends (api.app.graphql_context).
    reads: RequestReads = field(init=False)
    shared_reads: InitVar[RequestReads | None] = None
    # Set when the database failed under the operation (schema.DatabaseOutage): the request answers 503.
    database_outage: BaseException | None = None

    def __post_init__(self, shared_reads: RequestReads | None) -> None:
        super().__init__()
        self.reads = shared_reads or RequestReads(self.db)
        self.loaders = Loaders(self.reads, self.actor)

    def __hash__(self) -> int:
        return id(self)


def context_of(info: Any) -> Context:
    ctx: Context = info.context
    return ctx
