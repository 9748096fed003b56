"""Per-request DataLoaders: every relationship field goes through one; batches take turns on the request's
read session (db.uow.RequestReads), never using it at the same time.

Row visibility comes from one `Scope` per request (the organizations the viewer manages), computed once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from youthlink.db.models import Organization, Project, Team, Town
from youthlink.db.uow import RequestReads
from youthlink.domain import outcomes, pagination, reads
from youthlink.domain.actor import Actor
from youthlink.domain.matching import decisions
from youthlink.domain.pagination import Page

PageKey = tuple[str, uuid.UUID, int, str | None]
Fetch = Callable[[AsyncSession, reads.Scope, list[Any]], Awaitable[dict[Any, Any]]]


class Loaders:
    def __init__(self, shared: RequestReads, actor: Actor) -> None:
        self.shared = shared
        self.actor = actor
        self._scope: reads.Scope | None = None
        self._scope_lock = asyncio.Lock()
        self.town = self._by_key(lambda s, _, ids: reads.by_id(s, Town, ids))
        self.organization = self._by_key(lambda s, _, ids: reads.by_id(s, Organization, ids))
        self.team = self._by_key(lambda s, _, ids: reads.by_id(s, Team, ids))
        self.project = self._by_key(lambda s, _, ids: reads.by_id(s, Project, ids))
        self.task = self._by_key(reads.tasks)
        self.volunteer = self._by_key(reads.volunteers)
        self.signup = self._by_key(reads.signups)
        self.record = self._by_key(reads.records)
        self.record_by_signup = self._by_key(reads.records_by_signup)
        # A matching batch's decisions, by (task, round): the sign-ups' scores and explanations.
        self.decision = self._by_key(lambda s, _, keys: decisions.records(s, keys))
        self.membership = self._by_key(lambda s, _, keys: reads.memberships(s, keys))
        self.full_phone = self._by_key(self._flags(reads.full_phone_ids))
        self.manages_task = self._by_key(self._flags(reads.manages_tasks))
        self.member_count = self._by_key(lambda s, _, ids: reads.member_counts(s, ids))
        self.organization_totals = self._by_key(lambda s, _, ids: reads.organization_totals(s, ids))
        self.project_totals = self._by_key(lambda s, _, ids: reads.project_totals(s, ids))
        self.project_organizations = self._by_key(lambda s, _, ids: reads.project_organizations(s, ids))
        self.account_name = self._by_key(lambda s, _, ids: reads.account_names(s, ids))
        self.task_outcome = self._by_key(lambda s, _, ids: outcomes.reports(s, ids))
        self._pages = self._relation_pages()

    async def scope(self, session: AsyncSession) -> reads.Scope:
        async with self._scope_lock:
            if self._scope is None:
                self._scope = await reads.scope_for(session, self.actor)
        return self._scope

    def page(self, relation: str, parent_id: uuid.UUID, first: int | None, after: str | None
             ) -> Awaitable[Page[Any]]:
        """One page of a relationship (see reads.RELATIONS) under `parent_id`, batched with its siblings."""
        return self._pages.load((relation, parent_id, pagination.page_size(first), after))

    def _by_key(self, fetch: Fetch) -> DataLoader[Any, Any]:
        async def load(keys: list[Any]) -> list[Any]:
            async with self.shared.session() as session:
                found = await fetch(session, await self.scope(session), list(dict.fromkeys(keys)))
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load)

    @staticmethod
    def _flags(fetch: Callable[[AsyncSession, reads.Scope, list[uuid.UUID]], Awaitable[set[uuid.UUID]]]) -> Fetch:
        async def flags(session: AsyncSession, scope: reads.Scope, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
            allowed = await fetch(session, scope, ids)
            return {i: i in allowed for i in ids}

        return flags

    def _relation_pages(self) -> DataLoader[PageKey, Page[Any]]:
        """Keys are (relation, parent id, first, after); parents sharing the rest are fetched in one query.

        One loader for every relation: sibling lists (a volunteer's signups and service records) arrive
        together, so what their items load next (their tasks) goes out in one batch too.
        """

        async def load(keys: list[PageKey]) -> list[Page[Any]]:
            groups: dict[tuple[str, int, str | None], list[uuid.UUID]] = {}
            for relation, parent, first, after in keys:
                groups.setdefault((relation, first, after), []).append(parent)
            results: dict[PageKey, Page[Any]] = {}
            async with self.shared.session() as session:
                scope = await self.scope(session)
                for (relation, first, after), parents in groups.items():
                    pages = await reads.relation_pages(session, scope, reads.RELATIONS[relation],
                                                       list(dict.fromkeys(parents)), first, after)
                    for parent in parents:
                        results[(relation, parent, first, after)] = pages[parent]
            return [results[k] for k in keys]

        return DataLoader(load_fn=load)
