"""Login throttling: after N failures in a window, a phone (or a client address) must wait.

Counters live in Redis with an expiry, keyed by a keyed hash of the phone (never the number itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from youthlink.config import get_settings
from youthlink.domain.personal_data import keyed_hash
from youthlink.errors import DomainError

log = logging.getLogger(__name__)


class Throttled(DomainError):
    kind = "FORBIDDEN"


@dataclass
class LoginThrottle:
    client: aioredis.Redis

    @staticmethod
    def keys(phone: str, client_address: str) -> list[str]:
        keys = [f"youthlink:login-failures:phone:{keyed_hash(phone, 'login-throttle')}"]
        if client_address:
            keys.append(f"youthlink:login-failures:addr:{client_address}")
        return keys

    async def check(self, phone: str, client_address: str) -> None:
        settings = get_settings()
        try:
            counts = [int(c or 0) for c in await self.client.mget(self.keys(phone, client_address))]
        except RedisError as exc:
            # Logins keep working while Redis is down; only the throttle is off (and that is logged).
            log.warning("login throttle unavailable: %s", type(exc).__name__)
            return
        limits = (settings.login_max_failures, settings.login_max_failures_per_address)
        if any(count >= limit for count, limit in zip(counts, limits, strict=False)):
            minutes = settings.login_window_seconds // 60
            raise Throttled("LOGIN_THROTTLED", f"登录失败次数过多，请 {minutes} 分钟后再试", "phone")

    async def failed(self, phone: str, client_address: str) -> None:
        window = get_settings().login_window_seconds
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for key in self.keys(phone, client_address):
                    # The window starts at the first failure (SET NX EX works on Redis 6 too).
                    pipe.set(key, 0, ex=window, nx=True)
                    pipe.incr(key)
                await pipe.execute()
        except RedisError as exc:
            log.warning("login throttle unavailable: %s", type(exc).__name__)

    async def succeeded(self, phone: str) -> None:
        try:
            await self.client.delete(self.keys(phone, "")[0])
        except RedisError as exc:
            log.warning("login throttle unavailable: %s", type(exc).__name__)
