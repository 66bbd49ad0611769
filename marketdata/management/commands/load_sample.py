"""manage.py load_sample: the bundled SPX/IXIC daily bars (idempotent; `make run` uses it)."""

from django.core.management.base import BaseCommand, CommandError

from marketdata.services import load_sample
from marketdata.validation import BarDataError


class Command(BaseCommand):
    help = "Create the sample stocks and load their bundled daily bars (running it again changes nothing)."

    def handle(self, *args, **options):
        try:
            loaded = load_sample()
        except BarDataError as exc:
            raise CommandError(str(exc)) from None
        if not loaded:
            self.stdout.write("no sample files found")
        for stock, timeframe, result in loaded:
            self.stdout.write(f"sample {stock.symbol} {timeframe}: {result}")
