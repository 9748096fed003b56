"""Per-process runtime for jobs: one event loop and one engine per worker process, made after fork."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from youthlink.config import get_settings
from youthlink.db.engine import make_engine
from youthlink.db.uow import Database
from youthlink.domain.personal_data import install_log_redaction
from youthlink.runtime import database_url
from youthlink.workers.relay import relay_inline

log = logging.getLogger(__name__)
T = TypeVar("T")

_state: dict[str, Any] = {}


def _ensure() -> tuple[asyncio.AbstractEventLoop, Database]:
    # Keyed by pid: a forked child must never reuse its parent's loop or connections.
    if _state.get("pid") != os.getpid():
        install_log_redaction()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        engine = make_engine(database_url(), get_settings(), pool_size=2, role="worker")
        db = Database(engine)
        db.relay = relay_inline(db)
        _state.update(pid=os.getpid(), loop=loop, db=db)
    return _state["loop"], _state["db"]


def database() -> Database:
    return _ensure()[1]


def run(coro: Coroutine[Any, Any, T]) -> T:
    loop, _ = _ensure()
    return loop.run_until_complete(coro)
