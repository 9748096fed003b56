"""What every REST route needs from a request: the database, who is asking, and an ID in either form."""

from __future__ import annotations

import uuid

from fastapi import Request

from youthlink.db.uow import Database
from youthlink.domain.actor import Actor
from youthlink.graphql.ids import decode_id


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def actor(request: Request) -> Actor:
    from youthlink.api.app import actor_for  # the app module includes the routers: import at call time

    return await actor_for(request)


def entity_id(value: str, type_name: str, field: str) -> uuid.UUID:
    """A plain UUID or the Relay global ID the GraphQL API hands out."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return decode_id(value, type_name, field)
