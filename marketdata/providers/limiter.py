"""A client-side API credit limiter: at most N credits a minute and M a day.

Twelve Data counts credits per calendar minute and per UTC day; we count the same fixed
windows so that we never get its 429. With Redis configured (settings.REDIS_URL) the
counters live there and every process (web, workers, commands) shares one budget;
otherwise they live in this process. The clock and sleep are injectable for tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from marketdata.providers.base import ProviderError

DAY = 86_400
logger = logging.getLogger("marketdata.limiter")


class CreditsExhausted(ProviderError):
    """The daily credit budget is spent; waiting minutes would not help."""


class CreditStore(Protocol):
    def take(self, minute: int, day: int, credits: int, per_minute: int, per_day: int) -> int:
        """1 = taken, 0 = minute full, -1 = day full. Atomic."""


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def take(self, minute: int, day: int, credits: int, per_minute: int, per_day: int) -> int:
        with self._lock:
            m_key, d_key = f"m{minute}", f"d{day}"
            if self._counts.get(d_key, 0) + credits > per_day:
                return -1
            if self._counts.get(m_key, 0) + credits > per_minute:
                return 0
            # Keep only the current windows: memory stays bounded.
            self._counts = {k: v for k, v in self._counts.items() if k in (m_key, d_key)}
            self._counts[m_key] = self._counts.get(m_key, 0) + credits
            self._counts[d_key] = self._counts.get(d_key, 0) + credits
            return 1


_TAKE_LUA = """
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local c = tonumber(ARGV[1])
if d + c > tonumber(ARGV[3]) then return -1 end
if m + c > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], c)
redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCRBY', KEYS[2], c)
redis.call('EXPIRE', KEYS[2], 172800)
return 1
"""


class RedisStore:
    """Counters in Redis, checked and incremented by one Lua script (atomic across processes)."""

    def __init__(self, client, prefix: str = "marketdata:credits") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_TAKE_LUA)

    def take(self, minute: int, day: int, credits: int, per_minute: int, per_day: int) -> int:
        keys = [f"{self.prefix}:m:{minute}", f"{self.prefix}:d:{day}"]
        return int(self._script(keys=keys, args=[credits, per_minute, per_day]))


class CreditLimiter:
    def __init__(
        self,
        per_minute: int,
        per_day: int,
        store: CreditStore | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("credit limits must be at least 1 per minute and per day")
        self.per_minute = per_minute
        self.per_day = per_day
        self.store = store or MemoryStore()
        self.clock = clock
        self.sleep = sleep

    def acquire(self, credits: int = 1) -> float:
        """Take ``credits``, sleeping until the next minute when this one is full.

        Returns the seconds waited. Raises CreditsExhausted when the day's budget is spent.
        """
        if credits > self.per_minute:
            raise ValueError(f"a request of {credits} credits exceeds the {self.per_minute}/minute limit")
        waited = 0.0
        while True:
            now = self.clock()
            minute, day = int(now // 60), int(now // DAY)
            outcome = self.store.take(minute, day, credits, self.per_minute, self.per_day)
            if outcome == 1:
                return waited
            if outcome == -1:
                raise CreditsExhausted(
                    f"Twelve Data daily credits used up ({self.per_day}/day); they reset at 00:00 UTC"
                )
            pause = (minute + 1) * 60 - now + 0.05
            logger.info("API credits for this minute used (%d/min); waiting %.0fs", self.per_minute, pause)
            self.sleep(pause)
            waited += pause


_shared: CreditLimiter | None = None


def shared_limiter() -> CreditLimiter:
    """The process-wide limiter built from settings (Redis-backed when REDIS_URL is set)."""
    global _shared
    from django.conf import settings

    if _shared is None:
        store: CreditStore
        if settings.REDIS_URL:
            import redis

            store = RedisStore(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5))
        else:
            store = MemoryStore()
        _shared = CreditLimiter(
            settings.TWELVE_DATA_CREDITS_PER_MINUTE, settings.TWELVE_DATA_CREDITS_PER_DAY, store
        )
    return _shared
