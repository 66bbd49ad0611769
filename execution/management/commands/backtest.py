"""manage.py backtest: run a strategy over stored bars and print the metrics (or JSON)."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.backtest import BacktestError
from execution.backtest.report import metrics_table, trades_table
from execution.backtest.services import create_backtest_run, run_from_inputs, store_result
from execution.management.commands._options import parse_date
from strategies.management.commands._options import parse_params


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Backtest a strategy on stored bars: prints a metrics table (or --json); --save stores a BacktestRun."
    )

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="strategy key, e.g. sma_crossover")
        parser.add_argument(
            "--symbols", nargs="+", required=True, help="one symbol, or several for a portfolio"
        )
        parser.add_argument(
            "--from", dest="start", help="first bar traded (bars before warm the indicators up)"
        )
        parser.add_argument("--to", dest="end", help="last bar")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="strategy parameter")
        parser.add_argument(
            "--setting",
            action="append",
            metavar="NAME=VALUE",
            help="backtest setting, e.g. initial_cash=50000, stop_type=percent, stop_value=5",
        )
        parser.add_argument("--commission", choices=["none", "per_share", "percent"])
        parser.add_argument("--slippage-bps", type=float)
        parser.add_argument("--short", action="store_true", help="allow shorts")
        parser.add_argument("--save", action="store_true", help="store the run as a BacktestRun")
        parser.add_argument("--json", action="store_true", help="print inputs, metrics and trades as JSON")
        parser.add_argument("--trades", type=int, default=10, help="show the last N trades (table output)")

    def handle(self, *args, **o):
        settings = parse_params(o["setting"])
        costs = dict(settings.pop("costs", {}) or {})
        if o["commission"]:
            costs["commission"] = o["commission"]
        if o["slippage_bps"] is not None:
            costs["slippage_bps"] = o["slippage_bps"]
        if costs:
            settings["costs"] = costs
        if o["short"]:
            settings["allow_short"] = True
        inputs = {
            "strategy_class": o["strategy"],
            "parameters": parse_params(o["param"]),
            "symbols": [s.upper() for s in o["symbols"]],
            "timeframe": o["timeframe"],
            "start": parse_date(o["start"], "--from"),
            "end": parse_date(o["end"], "--to"),
            "settings": settings,
        }
        try:
            run = create_backtest_run(**inputs) if o["save"] else None
            result = run_from_inputs(**inputs)
        except ValidationError as exc:
            raise CommandError(_error_text(exc)) from None
        except BacktestError as exc:
            raise CommandError(str(exc)) from None
        if run is not None:
            store_result(run, result, 0.0)
        if o["json"]:
            payload = {
                "id": run.pk if run else None,
                "inputs": {
                    **inputs,
                    "parameters": result.parameters,
                    "start": inputs["start"].isoformat() if inputs["start"] else None,
                    "end": inputs["end"].isoformat() if inputs["end"] else None,
                    "settings": result.settings.to_dict(),
                },
                "metrics": result.metrics,
                "trades": result.trade_records(),
            }
            self.stdout.write(json.dumps(payload, indent=2))
            return
        params = ", ".join(f"{k}={v}" for k, v in result.parameters.items())
        s = result.settings
        self.stdout.write(
            f"Backtest {result.strategy_key}({params}) on {', '.join(result.symbols)} [{o['timeframe']}]"
        )
        self.stdout.write(
            f"cash {s.initial_cash:,.0f}; {s.costs.commission} commission, "
            f"{s.costs.slippage_bps:g} bp slippage; "
            f"sizing {s.sizing_method} ({s.position_fraction:g} of equity, risk {s.risk_per_trade:g}); "
            f"stop {s.stop_type} {s.stop_value:g}; target {s.target_type} {s.target_value:g}; "
            f"max {s.max_open_positions} positions{'; shorts allowed' if s.allow_short else ''}"
        )
        self.stdout.write("")
        self.stdout.write(metrics_table(result.metrics))
        if o["trades"]:
            self.stdout.write("")
            self.stdout.write(trades_table(result.trades, o["trades"]))
        if run is not None:
            self.stdout.write(f"\nsaved as backtest #{run.pk}")
