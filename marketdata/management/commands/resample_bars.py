"""manage.py resample_bars SYMBOL ... --from 1min --to 5min"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.resample import ResampleError
from marketdata.services import resample_stored

from ._common import parse_time, stock_arg, timeframe_arg


class Command(BaseCommand):
    help = "Build longer bars (5min/15min/30min/1h/2h/4h/1day) from stored intraday bars."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="+")
        parser.add_argument("--from", dest="source", default="1min")
        parser.add_argument("--to", dest="target", required=True)
        parser.add_argument("--start")
        parser.add_argument("--end")

    def handle(self, *args, **options):
        source, target = timeframe_arg(options["source"]), timeframe_arg(options["target"])
        start, end = parse_time(options["start"], "--start"), parse_time(options["end"], "--end")
        for stock in [stock_arg(s) for s in options["symbols"]]:
            try:
                result = resample_stored(stock, source, target, start, end)
            except ResampleError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{stock.symbol} {source} -> {target}: {result}")
