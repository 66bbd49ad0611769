"""manage.py sweep: a parameter grid backtested in parallel, ranked in-sample, checked out-of-sample."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.backtest.services import run_and_store_sweep
from execution.management.commands._options import parse_date, parse_grid
from strategies.management.commands._options import parse_params


def _fmt(value, pct=False):
    if value is None:
        return "n/a"
    return f"{value * 100:.2f}%" if pct else f"{value:.2f}"


class Command(BaseCommand):
    help = (
        "Backtest every point of a parameter grid (in parallel processes), rank by a metric on the "
        "in-sample period and show the out-of-sample result next to it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True)
        parser.add_argument("--symbols", nargs="+", required=True)
        parser.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2|START:STOP:STEP")
        parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="fixed parameter")
        parser.add_argument("--setting", action="append", metavar="NAME=VALUE", help="backtest setting")
        parser.add_argument("--from", dest="start")
        parser.add_argument("--to", dest="end")
        parser.add_argument("--timeframe", default="1day")
        parser.add_argument(
            "--split", default="0.7", help="out-of-sample start: a fraction of the bars or a date"
        )
        parser.add_argument("--folds", type=int, default=0, help="walk-forward folds (anchored)")
        parser.add_argument("--rank-by", default="sharpe")
        parser.add_argument(
            "--processes", type=int, default=None, help="worker processes (default: CPU count)"
        )
        parser.add_argument("--top", type=int, default=15)
        parser.add_argument("--save", action="store_true", help="store the sweep as a SweepRun")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        split = o["split"]
        try:
            split = float(split)
        except ValueError:
            split = parse_date(split, "--split")
        try:
            result, run, elapsed = run_and_store_sweep(
                strategy_class=o["strategy"],
                grid=parse_grid(o["grid"]),
                symbols=[s.upper() for s in o["symbols"]],
                timeframe=o["timeframe"],
                base_parameters=parse_params(o["param"]),
                settings=parse_params(o["setting"]),
                start=parse_date(o["start"], "--from"),
                end=parse_date(o["end"], "--to"),
                split=split,
                folds=o["folds"],
                rank_by=o["rank_by"],
                processes=o["processes"],
                save=o["save"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        if o["json"]:
            payload = {"id": run.pk if run else None, "rank_by": result.rank_by, "rows": result.rows}
            payload.update(walk_forward=result.walk_forward, skipped=result.skipped)
            self.stdout.write(json.dumps(payload, indent=2))
            return
        points = len(result.rows) + len(result.skipped)
        self.stdout.write(
            f"sweep {o['strategy']} on {', '.join(o['symbols'])}: {points} points in {elapsed:.2f} s "
            f"({points / elapsed:.1f} points/s), ranked by in-sample {o['rank_by']}"
        )
        self._print_rows(result, o["rank_by"], o["top"])
        for fold in result.walk_forward:
            params = ", ".join(f"{k}={v}" for k, v in fold["parameters"].items())
            oos_return = _fmt((fold["out_of_sample"] or {}).get("total_return"), True)
            self.stdout.write(
                f"walk-forward fold {fold['fold']} from {fold['out_of_sample_start'][:10]}: "
                f"best in-sample {params} -> out-of-sample return {oos_return}"
            )
        for skip in result.skipped:
            self.stdout.write(f"skipped {skip['parameters']}: {skip['error']}")
        if run is not None:
            self.stdout.write(f"saved as sweep #{run.pk}")

    def _print_rows(self, result, rank_by: str, top: int) -> None:
        self.stdout.write(
            f"{'rank':>4}  {'parameters':<36} {'IS ' + rank_by:>12} {'IS return':>10} "
            f"{'OOS ' + rank_by:>12} {'OOS return':>10} {'trades':>7}"
        )
        for row in result.rows[:top]:
            iso, oos = row["in_sample"] or {}, row.get("out_of_sample") or {}
            params = ", ".join(f"{k}={v}" for k, v in row["parameters"].items())
            self.stdout.write(
                f"{row['rank']:>4}  {params:<36} {_fmt(iso.get(rank_by)):>12} "
                f"{_fmt(iso.get('total_return'), True):>10} {_fmt(oos.get(rank_by)):>12} "
                f"{_fmt(oos.get('total_return'), True):>10} {iso.get('trades', 0):>7}"
            )
