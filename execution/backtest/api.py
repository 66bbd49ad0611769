"""JSON API for backtests and sweeps (registered by ``execution.api``; URLs ``/api/backtests/``
and ``/api/sweeps/``).

Serializers and views stay thin: validation and every change go through
``execution.backtest.services``; bad input is a 400 with one message list per field.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from execution.backtest import BacktestSettings
from execution.backtest import services as backtest_services
from execution.backtest.models import BacktestRun, SweepRun
from execution.backtest.tasks import run_backtest
from marketdata.timeframes import Timeframe
from strategies.api import drf_errors
from strategies.models import Strategy


# --- backtests ----------------------------------------------------------------------------
class BacktestRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = BacktestRun
        fields = "__all__"


class BacktestRunListSerializer(serializers.ModelSerializer):
    """Without the equity curve and trades, which can be long."""

    class Meta:
        model = BacktestRun
        exclude = ["equity_curve", "trades"]


class BacktestRequestSerializer(serializers.Serializer):
    """A backtest request: a Strategy row (its class, parameters, universe, timeframe and risk
    settings are the defaults), or a strategy class with parameters and symbols."""

    strategy = serializers.PrimaryKeyRelatedField(
        queryset=Strategy.objects.all(), required=False, allow_null=True
    )
    strategy_class = serializers.CharField(required=False, max_length=64)
    parameters = serializers.DictField(required=False)
    symbols = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False)
    start = serializers.DateTimeField(required=False, allow_null=True)
    end = serializers.DateTimeField(required=False, allow_null=True)
    settings = serializers.DictField(required=False, help_text="BacktestSettings fields; costs as an object")

    def validate(self, attrs):
        row = attrs.get("strategy")
        if row is None and not attrs.get("strategy_class"):
            raise serializers.ValidationError({"strategy_class": ["give a strategy_class or a strategy id"]})
        inputs = {
            "strategy": row,
            "strategy_class": attrs.get("strategy_class") or row.strategy_class,
            "parameters": attrs.get("parameters", row.parameters if row else {}),
            "symbols": attrs.get("symbols")
            or (list(row.stocks.values_list("symbol", flat=True)) if row else []),
            "timeframe": attrs.get("timeframe") or (row.timeframe if row else "1day"),
            "start": attrs.get("start"),
            "end": attrs.get("end"),
        }
        settings = attrs.get("settings")
        if row is not None:
            try:
                base = BacktestSettings.from_strategy(row).to_dict()
            except ValueError as exc:
                raise serializers.ValidationError({"strategy": [f"invalid risk settings: {exc}"]}) from None
            settings = {**base, **(settings or {})}
        inputs["settings"] = settings or {}
        try:
            backtest_services.validate_backtest_request(
                inputs["strategy_class"],
                inputs["parameters"],
                inputs["symbols"],
                inputs["timeframe"],
                inputs["start"],
                inputs["end"],
                inputs["settings"],
            )
        except DjangoValidationError as exc:
            raise drf_errors(exc) from None
        return inputs


class BacktestQueuedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()
    error = serializers.CharField(required=False)


class BacktestRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """POST validates and queues a backtest (run inline by the immediate task backend) and
    returns its id; GET returns its status, metrics, equity curve and trades."""

    queryset = BacktestRun.objects.all()
    filterset_fields = ["strategy", "strategy_class", "status"]
    ordering_fields = ["created_at"]

    def get_serializer_class(self):
        if self.action == "create":
            return BacktestRequestSerializer
        if self.action == "list":
            return BacktestRunListSerializer
        return BacktestRunSerializer

    @extend_schema(
        request=BacktestRequestSerializer,
        responses={201: BacktestQueuedSerializer, 202: BacktestQueuedSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = backtest_services.create_backtest_run(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise drf_errors(exc) from None
        run_backtest.enqueue(run.pk)
        run.refresh_from_db()
        body = {"id": run.pk, "status": run.status, "url": f"/api/backtests/{run.pk}/"}
        if run.error:
            body["error"] = run.error
        return Response(
            body, status=status.HTTP_201_CREATED if run.status == "done" else status.HTTP_202_ACCEPTED
        )


class SweepRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SweepRun
        fields = "__all__"


class SweepRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = SweepRun.objects.all()
    serializer_class = SweepRunSerializer
    filterset_fields = ["strategy_class"]
    ordering_fields = ["created_at"]


def register(router: BaseRouter) -> None:
    router.register("backtests", BacktestRunViewSet)
    router.register("sweeps", SweepRunViewSet)
