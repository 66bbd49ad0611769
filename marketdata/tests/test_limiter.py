"""The credit limiter under a controlled clock (and shared through Redis when configured)."""

import uuid

import pytest
from django.conf import settings

from marketdata.providers import limiter as limiter_module
from marketdata.providers.limiter import CreditLimiter, CreditsExhausted, MemoryStore, RedisStore


class Clock:
    def __init__(self, now=0.0):
        self.now = now
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 2))
        self.now += seconds


def make(store=None, per_minute=8, per_day=800, now=10.0):
    clock = Clock(now)
    return CreditLimiter(per_minute, per_day, store=store, clock=clock, sleep=clock.sleep), clock


def test_eight_a_minute_then_wait_for_the_next_minute():
    limiter, clock = make()
    assert [limiter.acquire() for _ in range(8)] == [0.0] * 8
    assert clock.slept == []
    waited = limiter.acquire()
    assert clock.slept == [50.05] and waited == pytest.approx(50.05)
    assert clock.now >= 60  # the ninth credit is spent in the next minute
    for _ in range(7):
        limiter.acquire()
    assert len(clock.slept) == 1
    limiter.acquire()
    assert len(clock.slept) == 2 and clock.now >= 120


def test_daily_budget_is_not_waited_for():
    limiter, clock = make(per_minute=5, per_day=12)
    for _ in range(12):
        limiter.acquire()
    with pytest.raises(CreditsExhausted, match=r"daily credits used up \(12/day\)"):
        limiter.acquire()
    clock.now = 86_400 + 1  # the next UTC day
    assert limiter.acquire() == 0.0


def test_bad_limits_and_oversized_requests():
    with pytest.raises(ValueError):
        CreditLimiter(0, 10)
    limiter, _ = make(per_minute=2)
    with pytest.raises(ValueError, match="exceeds the 2/minute limit"):
        limiter.acquire(3)


def test_memory_store_keeps_only_current_windows():
    store = MemoryStore()
    for minute in range(100):
        store.take(minute, 0, 1, 10, 1000)
    assert len(store._counts) == 2


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")
def test_redis_store_is_shared_between_limiters():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"test:credits:{uuid.uuid4().hex}"
    first, clock = make(RedisStore(client, prefix), per_minute=3)
    second = CreditLimiter(3, 800, store=RedisStore(client, prefix), clock=clock, sleep=clock.sleep)
    first.acquire()
    second.acquire(2)
    first.acquire()  # the minute is full across both: waits
    assert clock.slept == [50.05]
    client.delete(*client.keys(f"{prefix}:*"))


def test_shared_limiter_follows_settings(settings, monkeypatch):
    monkeypatch.setattr(limiter_module, "_shared", None)
    settings.TWELVE_DATA_CREDITS_PER_MINUTE = 5
    shared = limiter_module.shared_limiter()
    assert shared.per_minute == 5 and limiter_module.shared_limiter() is shared
    expected = RedisStore if settings.REDIS_URL else MemoryStore
    assert isinstance(shared.store, expected)
    monkeypatch.setattr(limiter_module, "_shared", None)
