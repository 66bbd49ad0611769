"""manage.py import_bars FILE --symbol AAPL --timeframe 1day [--create]"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Stock
from marketdata.services import import_csv
from marketdata.validation import BarDataError

from ._common import timeframe_arg


class Command(BaseCommand):
    help = "Import bars from a CSV; a bad file is rejected whole, naming the line and column."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--exchange", default=None)
        parser.add_argument("--create", action="store_true", help="add the stock if it is not known")

    def handle(self, *args, **options):
        timeframe = timeframe_arg(options["timeframe"])
        try:
            stock, result = import_csv(
                options["file"], options["symbol"], timeframe, options["exchange"], options["create"]
            )
        except (BarDataError, ValueError, Stock.DoesNotExist) as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        self.stdout.write(f"{stock.symbol} {timeframe}: {result}")
