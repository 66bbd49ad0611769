"""manage.py stocks add AAPL MSFT --exchange NASDAQ | list [--all] | deactivate AAPL"""

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Stock
from marketdata.services import add_stocks, deactivate_stocks


class Command(BaseCommand):
    help = "Manage the stock universe: add, list, deactivate."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add (or re-activate) stocks")
        add.add_argument("symbols", nargs="+")
        add.add_argument("--exchange", default="")
        add.add_argument("--name", default="")
        add.add_argument("--currency", default="USD")
        listing = sub.add_parser("list", help="list active stocks")
        listing.add_argument("--all", action="store_true", help="include inactive stocks")
        deactivate = sub.add_parser("deactivate", help="stop trading and fetching these stocks")
        deactivate.add_argument("symbols", nargs="+")

    def handle(self, *args, action, **options):
        try:
            if action == "add":
                for stock, created in add_stocks(
                    options["symbols"], options["exchange"], options["name"], options["currency"]
                ):
                    self.stdout.write(f"{'added' if created else 'exists'} {stock}")
            elif action == "deactivate":
                count = deactivate_stocks(options["symbols"])
                self.stdout.write(f"deactivated {count} stock(s)")
            else:
                stocks = Stock.objects.all() if options["all"] else Stock.objects.filter(active=True)
                for stock in stocks:
                    state = "" if stock.active else "  (inactive)"
                    self.stdout.write(
                        f"{stock.symbol:<10} {stock.exchange:<10} {stock.currency} {stock.name}{state}"
                    )
        except (ValueError, Stock.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
