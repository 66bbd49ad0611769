"""manage.py fetch_bars [SYMBOL ...] --timeframe 1day [--start --end --provider]"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Stock
from marketdata.providers import ProviderError, get_provider
from marketdata.services import fetch_and_store
from marketdata.validation import BarDataError

from ._common import parse_time, stock_arg, timeframe_arg


class Command(BaseCommand):
    help = "Fetch bars incrementally (from the last stored bar) for the given or all active stocks."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="default: every active stock")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument("--start", help="ISO date/time (UTC); default: the last stored bar")
        parser.add_argument("--end", help="ISO date/time (UTC); default: now")
        parser.add_argument("--provider", help="sample | twelvedata | csv (default: MARKETDATA_PROVIDER)")

    def handle(self, *args, **options):
        timeframe = timeframe_arg(options["timeframe"])
        start, end = parse_time(options["start"], "--start"), parse_time(options["end"], "--end")
        stocks = [stock_arg(s) for s in options["symbols"]] or list(Stock.objects.filter(active=True))
        if not stocks:
            raise CommandError("no active stocks; add some with: manage.py stocks add SYMBOL")
        try:
            provider = get_provider(options["provider"])
        except ProviderError as exc:
            raise CommandError(str(exc)) from None
        failures = 0
        for i, stock in enumerate(stocks, 1):
            prefix = f"[{i}/{len(stocks)}] {stock.symbol} {timeframe}"
            try:
                result = fetch_and_store(stock, timeframe, provider, start, end)
            except (ProviderError, BarDataError) as exc:
                failures += 1
                self.stderr.write(f"{prefix}: failed: {exc}")
                continue
            self.stdout.write(f"{prefix}: {result}")
        if failures:
            raise CommandError(f"{failures} of {len(stocks)} fetch(es) failed")
