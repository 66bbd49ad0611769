"""The market clock: the one place that says what time it is.

Everything time-dependent (the engine, the feeds, the trading-hours rule, the closed-bar
filters, /health) asks :func:`now` instead of reading the wall clock, so that a whole
trading session can run on a :class:`SimulatedClock` in seconds (a drill, a demo, a test)
and a test can hold time still with a :class:`ManualClock`.

The process has one current clock (:func:`current`), the wall clock unless something
installed another (``run_trader --clock-start/--clock-speed``, a test's fixture).
Sleeping goes through the clock too: a simulated clock running 30 times faster sleeps a
thirtieth of the time, and a manual clock jumps straight to the instant asked for.
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"clock instants are timezone-aware; got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


class Clock(ABC):
    """A source of "now" (timezone-aware UTC) and a way to wait for a later instant."""

    simulated: bool = False

    @abstractmethod
    def now(self) -> datetime: ...

    @abstractmethod
    def _wait(self, clock_seconds: float, wake: threading.Event | None) -> bool:
        """Wait ``clock_seconds`` of this clock's time; False when ``wake`` was set first."""

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait ``seconds`` of clock time (or until ``wake`` is set: then False)."""
        if wake is not None and wake.is_set():
            return False
        return self._wait(max(0.0, seconds), wake)

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> bool:
        """Wait until the clock reads ``instant`` (True) or ``wake`` is set (False)."""
        instant = _aware(instant)
        while True:
            remaining = (instant - self.now()).total_seconds()
            if remaining <= 0:
                return True
            if not self.sleep(remaining, wake):
                return False

    def real_seconds_until(self, instant: datetime) -> float:
        """Real seconds until the clock reads ``instant`` (0 when it already does, and
        always for a clock that only moves when told)."""
        return max(0.0, (_aware(instant) - self.now()).total_seconds())

    def describe(self) -> str:
        return "wall clock"


class WallClock(Clock):
    """Real time: the default everywhere."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _wait(self, clock_seconds: float, wake: threading.Event | None) -> bool:
        if wake is None:
            time.sleep(clock_seconds)
            return True
        return not wake.wait(clock_seconds)


class SimulatedClock(Clock):
    """Starts at ``start`` and runs ``speed`` times faster than real time.

    ``speed=30`` makes a minute pass every two seconds. Time is derived from the
    monotonic clock, so it never jumps back when the machine's clock is adjusted.
    """

    simulated = True

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be a positive number; got {speed!r}")
        self.start = _aware(start)
        self.speed = float(speed)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def _wait(self, clock_seconds: float, wake: threading.Event | None) -> bool:
        real = clock_seconds / self.speed
        if wake is None:
            time.sleep(real)
            return True
        return not wake.wait(real)

    def real_seconds_until(self, instant: datetime) -> float:
        return super().real_seconds_until(instant) / self.speed

    def describe(self) -> str:
        return f"simulated clock from {self.start.isoformat()} at {self.speed:g}x"


class ManualClock(Clock):
    """Time moves only when told (:meth:`advance`, :meth:`set`) or when someone sleeps:
    a sleep jumps straight to its end, so a test walks a session with no waiting."""

    simulated = True

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = _aware(instant)

    def advance(self, delta: timedelta | float) -> datetime:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def _wait(self, clock_seconds: float, wake: threading.Event | None) -> bool:
        self.advance(clock_seconds)
        return True

    def real_seconds_until(self, instant: datetime) -> float:
        return 0.0

    def describe(self) -> str:
        return f"manual clock at {self.now().isoformat()}"


_current: Clock = WallClock()
_current_lock = threading.Lock()


def current() -> Clock:
    """The process's clock."""
    return _current


def now() -> datetime:
    """What time it is (timezone-aware UTC) on the process's clock."""
    return _current.now()


def wall_now() -> datetime:
    """Real time, for what is about the process rather than the market: a heartbeat's
    age, a log line. Market decisions ask :func:`now`."""
    return datetime.now(UTC)


def install(clock: Clock) -> Clock:
    """Make ``clock`` the process's clock; returns the one it replaces."""
    global _current
    with _current_lock:
        previous, _current = _current, clock
    return previous


@contextlib.contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Run the block on ``clock``, then put the previous clock back."""
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)


def parse_start(text: str) -> datetime:
    """A ``--clock-start`` value: ISO 8601 with a zone (``2026-11-30T14:30:00Z``)."""
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 instant: {text!r} (e.g. 2026-11-30T14:30:00Z)") from None
    if instant.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC or an offset such as -05:00")
    return instant.astimezone(UTC)
