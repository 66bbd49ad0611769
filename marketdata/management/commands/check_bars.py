"""manage.py check_bars [SYMBOL ...] --timeframe 1day [--strict]"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Stock
from marketdata.quality import check_frame
from marketdata.selectors import bars_frame

from ._common import parse_time, stock_arg, timeframe_arg


class Command(BaseCommand):
    help = "Check stored bars: calendar gaps, duplicates, order, zero volume, OHLC anomalies."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="default: every active stock")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument("--start")
        parser.add_argument("--end")
        parser.add_argument("--strict", action="store_true", help="exit non-zero when a problem is found")
        parser.add_argument("--limit", type=int, default=5, help="examples shown per problem")

    def handle(self, *args, **options):
        timeframe = timeframe_arg(options["timeframe"])
        start, end = parse_time(options["start"], "--start"), parse_time(options["end"], "--end")
        stocks = [stock_arg(s) for s in options["symbols"]] or list(Stock.objects.filter(active=True))
        problems = 0
        for stock in stocks:
            report = check_frame(bars_frame(stock, timeframe, start, end), stock.symbol, timeframe)
            problems += not report.ok
            for line in report.lines(options["limit"]):
                self.stdout.write(line)
        if problems and options["strict"]:
            raise CommandError(f"{problems} series with problems")
