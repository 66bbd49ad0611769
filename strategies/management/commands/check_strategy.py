"""manage.py check_strategy KEY: the lookahead checks, printing the first differing bar."""

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Stock
from marketdata.selectors import bars_frame
from strategies.base import ParameterError
from strategies.lookahead import check_causal, check_warmup, synthetic_bars
from strategies.management.commands._options import parse_params
from strategies.registry import UnknownStrategy, get_strategy


class Command(BaseCommand):
    help = (
        "Check that a strategy is causal (bar-by-bar signals equal whole-history signals) and that "
        "starting the history later does not change its signals after the warm-up."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="strategy key")
        parser.add_argument("--param", action="append", metavar="NAME=VALUE")
        parser.add_argument("--symbol", help="stored symbol to check on (default: synthetic random walk)")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument("--bars", type=int, default=300, help="bars for the bar-by-bar check")
        parser.add_argument("--short", action="store_true", help="also check short signals")

    def handle(self, *args, **o):
        try:
            strategy = get_strategy(o["key"])(parse_params(o["param"]), allow_short=o["short"])
        except UnknownStrategy as exc:
            raise CommandError(str(exc.args[0])) from None
        except ParameterError as exc:
            raise CommandError(f"invalid parameters: {exc}") from None
        if o["bars"] < 2:
            raise CommandError("--bars must be at least 2")
        if o["symbol"]:
            try:
                bars = bars_frame(o["symbol"], o["timeframe"])
            except Stock.DoesNotExist as exc:
                raise CommandError(str(exc)) from None
            if bars.empty:
                raise CommandError(f"no {o['timeframe']} bars stored for {o['symbol']}")
        else:
            bars = synthetic_bars(max(o["bars"], 3 * strategy.warmup + 100))
        where = f"{o['symbol'] or 'synthetic bars'} ({len(bars)} bars, warm-up {strategy.warmup})"
        self.stdout.write(f"checking {strategy.key} {strategy.p} on {where}")
        failures = 0
        for label, difference in (
            ("causality (bar by bar vs whole history)", check_causal(strategy, bars.iloc[: o["bars"]])),
            ("warm-up (later start, after warm-up)", check_warmup(strategy, bars)),
        ):
            if difference is None:
                self.stdout.write(f"OK   {label}")
            else:
                failures += 1
                self.stdout.write(f"FAIL {difference}")
        if failures:
            raise CommandError(f"{strategy.key} failed {failures} lookahead check(s)")
