"""Per-request context: the database, who is asking, and this request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from youthlink.db.uow import Database
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

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self.db, self.actor)

    def __hash__(self) -> int:
        return id(self)


def context_of(info: Any) -> Context:
    ctx: Context = info.context
    return ctx
