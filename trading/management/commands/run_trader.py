"""``manage.py run_trader``: the live engine (see docs/execution.md).

Without arguments it trades the active strategies live; with the sample provider that
means replaying the stored sample as a live feed at ENGINE_REPLAY_SPEED bars a second.
``--from/--to/--speed max`` replays a fixed period as fast as it can and exits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.lifecycle import announce
from trading.engine import Engine, EngineOptions


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


class Command(BaseCommand):
    help = "Run the trading engine: bars -> signals -> risk -> orders -> broker events."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", help="replay bars from this date/time (UTC)")
        parser.add_argument("--to", dest="end", help="replay up to this date/time (UTC), then exit")
        parser.add_argument("--speed", help="bars per second, or 'max' (default ENGINE_REPLAY_SPEED)")
        parser.add_argument(
            "--strategy", action="append", type=int, dest="strategies", help="strategy id (repeat)"
        )
        parser.add_argument("--broker", help="paper or ibkr (default BROKER)")

    def handle(self, *args, **options):
        start = parse_time(options["start"], "--from") if options["start"] else None
        end = parse_time(options["end"], "--to") if options["end"] else None
        if start and end and end < start:
            raise CommandError("--to must not be before --from")
        speed = parse_speed(options["speed"] or settings.ENGINE_REPLAY_SPEED)
        engine = Engine(
            EngineOptions(
                start=start,
                end=end,
                speed=speed,
                strategy_ids=options["strategies"],
                broker_name=options["broker"],
            )
        )
        announce(f"engine {engine.engine_id}")
        self.stdout.write(f"engine {engine.engine_id} starting ({engine.broker.name} broker)")
        code = engine.run()
        self.stdout.write(f"engine stopped after {engine.bars_processed} bars")
        if code:
            raise SystemExit(code)
