"""``manage.py run_trader``: the live engine (see docs/execution.md).

Without arguments it trades the active strategies on the stored bars; with the sample
provider that means replaying the stored sample as a live feed at ENGINE_REPLAY_SPEED
bars a second. ``--from/--to/--speed max`` replays a fixed period as fast as it can and
exits. ``--live`` wakes at every bar close of the exchange's sessions and asks the live
feed for the bar that closed; ``--clock-start/--clock-speed`` run that on a simulated
market clock (``--clock-speed 30``: a minute every two seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.lifecycle import announce
from marketdata import clock
from marketdata.feeds import FeedError
from trading.engine import Engine, EngineOptions
from trading.engine.live import LIVE_FEEDS, FeedStopped, LiveOptions

# The live counterpart of each MARKETDATA_PROVIDER.
DEFAULT_FEEDS = {"sample": "demo", "csv": "demo", "twelvedata": "twelvedata", "ibkr": "ibkr"}


def parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{name}: expected a date like 2018-01-02 or 2018-01-02T14:30, got {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_speed(value: str) -> float | None:
    if str(value).lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise CommandError(f"--speed: expected bars per second or 'max', got {value!r}") from None
    if speed <= 0:
        raise CommandError(f"--speed: must be positive, got {value!r}")
    return speed


def market_clock(start: str | None, speed: str | None) -> clock.Clock:
    """The clock for ``--clock-start/--clock-speed`` (the wall clock without them)."""
    if start is None and speed is None:
        return clock.WallClock()
    try:
        factor = float(speed) if speed is not None else 1.0
    except ValueError:
        raise CommandError(
            f"--clock-speed: expected a number (30: a minute every 2 s), got {speed!r}"
        ) from None
    try:
        instant = clock.parse_start(start) if start is not None else clock.wall_now()
    except ValueError as exc:
        raise CommandError(f"--clock-start: {exc}") from None
    try:
        return clock.SimulatedClock(instant, factor)
    except ValueError as exc:
        raise CommandError(f"--clock-speed: {exc}") from None


class Command(BaseCommand):
    help = "Run the trading engine: bars -> signals -> risk -> orders -> broker events."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", help="replay bars from this date/time (UTC)")
        parser.add_argument(
            "--to", dest="end", help="replay (or trade live) up to this date/time (UTC), then exit"
        )
        parser.add_argument("--speed", help="bars per second, or 'max' (default ENGINE_REPLAY_SPEED)")
        parser.add_argument(
            "--strategy", action="append", type=int, dest="strategies", help="strategy id (repeat)"
        )
        parser.add_argument("--broker", help="paper or ibkr (default BROKER)")
        parser.add_argument(
            "--live", action="store_true", help="wake at each bar close and fetch the bar from the live feed"
        )
        parser.add_argument(
            "--feed", help=f"live feed: {', '.join(sorted(LIVE_FEEDS))} (default: MARKETDATA_PROVIDER's)"
        )
        parser.add_argument("--clock-start", help="simulated market clock from this instant (implies --live)")
        parser.add_argument("--clock-speed", help="simulated clock speed, N times real time (implies --live)")

    def handle(self, *args, **options):
        start = parse_time(options["start"], "--from") if options["start"] else None
        end = parse_time(options["end"], "--to") if options["end"] else None
        if start and end and end < start:
            raise CommandError("--to must not be before --from")
        speed = parse_speed(options["speed"] or settings.ENGINE_REPLAY_SPEED)
        live = None
        if options["live"] or options["clock_start"] or options["clock_speed"] or options["feed"]:
            if start is not None:
                raise CommandError("--from replays stored bars; it does not go with --live")
            feed = options["feed"] or DEFAULT_FEEDS.get(settings.MARKETDATA_PROVIDER, "demo")
            if feed not in LIVE_FEEDS:
                raise CommandError(f"--feed: expected one of {', '.join(sorted(LIVE_FEEDS))}, got {feed!r}")
            clock.install(market_clock(options["clock_start"], options["clock_speed"]))
            live = LiveOptions(
                feed=feed, delay=settings.ENGINE_BAR_DELAY, stale_after=settings.ENGINE_STALE_AFTER
            )
        try:
            engine = Engine(
                EngineOptions(
                    start=start,
                    end=end,
                    speed=speed,
                    strategy_ids=options["strategies"],
                    broker_name=options["broker"],
                    live=live,
                )
            )
            announce(f"engine {engine.engine_id}")
            mode = f", live on the {live.feed} feed, {clock.current().describe()}" if live else ""
            self.stdout.write(f"engine {engine.engine_id} starting ({engine.broker.name} broker{mode})")
            code = engine.run()
        except (FeedError, FeedStopped) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"engine stopped after {engine.bars_processed} bars")
        if code:
            raise SystemExit(code)
