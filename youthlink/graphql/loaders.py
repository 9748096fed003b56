"""Per-request DataLoaders: every relationship field goes through one, each batch in its own read session."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from youthlink.db.models import Organization, Project, Team, Town
from youthlink.db.uow import Database
from youthlink.domain import reads
from youthlink.domain.actor import Actor
from youthlink.domain.pagination import Page

K = TypeVar("K")
V = TypeVar("V")
PageKey = tuple[uuid.UUID, int, str | None]


class Loaders:
    def __init__(self, db: Database, actor: Actor) -> None:
        self.db = db
        self.actor = actor
        a = actor
        self.town = self._by_key(lambda s, ids: reads.by_id(s, Town, ids))
        self.organization = self._by_key(lambda s, ids: reads.by_id(s, Organization, ids))
        self.team = self._by_key(lambda s, ids: reads.by_id(s, Team, ids))
        self.project = self._by_key(lambda s, ids: reads.by_id(s, Project, ids))
        self.task = self._by_key(lambda s, ids: reads.tasks(s, a, ids))
        self.volunteer = self._by_key(lambda s, ids: reads.volunteers(s, a, ids))
        self.full_phone = self._by_key(self._full_phone)
        self.signup = self._by_key(lambda s, ids: reads.signups(s, a, ids))
        self.record = self._by_key(lambda s, ids: reads.records(s, a, ids))
        self.record_by_signup = self._by_key(lambda s, ids: reads.records_by_signup(s, a, ids))
        self.manages_task = self._by_key(self._manages_task)
        self.member_count = self._by_key(lambda s, ids: reads.member_counts(s, ids))
        self.organization_totals = self._by_key(lambda s, ids: reads.organization_totals(s, ids))
        self.teams_of = self._pages(lambda s, ids, first, after: reads.teams_of(s, ids, first, after))
        self.projects_of = self._pages(lambda s, ids, first, after: reads.projects_of(s, ids, first))
        self.signups_of_task = self._pages(self._signups_of_task)
        self.signups_of_volunteer = self._pages(self._own_pages(reads.SIGNUPS_BY_VOLUNTEER))
        self.records_of_volunteer = self._pages(self._own_pages(reads.RECORDS_BY_VOLUNTEER))

    def _by_key(self, fetch: Callable[[AsyncSession, list[Any]], Awaitable[dict[Any, Any]]]) -> DataLoader[Any, Any]:
        async def load(keys: list[Any]) -> list[Any]:
            async with self.db.read() as session:
                found = await fetch(session, list(dict.fromkeys(keys)))
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load)

    def _pages(
        self, fetch: Callable[[AsyncSession, list[uuid.UUID], int, str | None], Awaitable[dict[uuid.UUID, Page[Any]]]]
    ) -> DataLoader[PageKey, Page[Any]]:
        """Keys are (parent id, first, after); parents sharing (first, after) are fetched in one query."""

        async def load(keys: list[PageKey]) -> list[Page[Any]]:
            groups: dict[tuple[int, str | None], list[uuid.UUID]] = {}
            for parent, first, after in keys:
                groups.setdefault((first, after), []).append(parent)
            results: dict[PageKey, Page[Any]] = {}
            async with self.db.read() as session:
                for (first, after), parents in groups.items():
                    pages = await fetch(session, list(dict.fromkeys(parents)), first, after)
                    for parent in parents:
                        results[(parent, first, after)] = pages[parent]
            return [results[k] for k in keys]

        return DataLoader(load_fn=load)

    async def _full_phone(self, session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bool]:
        allowed = await reads.full_phone_ids(session, self.actor, ids)
        return {i: i in allowed for i in ids}

    async def _manages_task(self, session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bool]:
        managed = await reads.manages_tasks(session, self.actor, ids)
        return {i: i in managed for i in ids}

    async def _signups_of_task(self, session: AsyncSession, task_ids: list[uuid.UUID], first: int,
                               after: str | None) -> dict[uuid.UUID, Page[Any]]:
        from sqlalchemy import select

        from youthlink.db.models import Signup

        managed = await reads.manages_tasks(session, self.actor, task_ids)
        pages: dict[uuid.UUID, Page[Any]] = {}
        if managed:
            everyone = select(Signup).where(Signup.task_id.in_(managed))
            pages = await reads.child_pages(session, reads.SIGNUPS_BY_TASK, everyone, task_ids, first, after)
        others = [t for t in task_ids if t not in managed]
        if others and self.actor.volunteer_id is not None:
            # Volunteers see only their own sign-up on a task they do not run.
            own = select(Signup).where(Signup.volunteer_id == self.actor.volunteer_id)
            pages.update(await reads.child_pages(session, reads.SIGNUPS_BY_TASK, own, others, first, after))
        empty = Page[Any](items=[], cursors=[], has_next=False, total_count=0)
        return {t: pages.get(t, empty) for t in task_ids}

    def _own_pages(self, spec: reads.ChildQuery) -> Callable[..., Awaitable[dict[uuid.UUID, Page[Any]]]]:
        from sqlalchemy import select

        async def fetch(session: AsyncSession, volunteer_ids: list[uuid.UUID], first: int, after: str | None
                        ) -> dict[uuid.UUID, Page[Any]]:
            # A volunteer's history lists are reached only through a visible volunteer (the loader checked it).
            return await reads.child_pages(session, spec, select(spec.model), volunteer_ids, first, after)

        return fetch
