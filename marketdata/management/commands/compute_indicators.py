"""manage.py compute_indicators SYMBOL ... --timeframe 1day [--indicator sma:length=50 ...]"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.indicators import IndicatorError, parse_spec
from marketdata.models import Stock
from marketdata.services import store_indicators

from ._common import parse_time, stock_arg, timeframe_arg


class Command(BaseCommand):
    help = "Compute pandas-ta indicators over stored bars and store them (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="default: every active stock")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument(
            "--indicator",
            action="append",
            dest="indicators",
            help="name[:k=v,...], repeatable (default: the whole catalogue with defaults)",
        )
        parser.add_argument("--start", help="store values from here (warm-up uses earlier bars)")
        parser.add_argument("--end")

    def handle(self, *args, **options):
        timeframe = timeframe_arg(options["timeframe"])
        start, end = parse_time(options["start"], "--start"), parse_time(options["end"], "--end")
        try:
            specs = [parse_spec(text) for text in options["indicators"] or []] or None
        except IndicatorError as exc:
            raise CommandError(f"--indicator: {exc}") from None
        stocks = [stock_arg(s) for s in options["symbols"]] or list(Stock.objects.filter(active=True))
        for stock in stocks:
            for result in store_indicators(stock, timeframe, specs, start, end):
                self.stdout.write(
                    f"{stock.symbol} {timeframe} {result.spec}: {result.inserted} inserted, "
                    f"{result.updated} updated, {result.unchanged} unchanged"
                )
