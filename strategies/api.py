"""JSON API for strategies, strategy classes, signals, events, backtests and sweeps.

Serializers and views stay thin: validation and every change go through
``strategies.services``. Bad input is a 400 with one message list per field
(``{"parameters": {"fast": ["must be less than slow (30), got 40"]}}``), never a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from marketdata.timeframes import Timeframe
from strategies import services
from strategies.backtest import BacktestSettings
from strategies.base import ParameterError
from strategies.models import BacktestRun, Strategy, StrategyEvent, SweepRun, TradeSignal
from strategies.registry import UnknownStrategy, all_strategies, get_strategy
from strategies.tasks import run_backtest


def _drf_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    """A Django ValidationError as a DRF one; "parameters.fast" keys become nested dicts."""
    if not hasattr(exc, "error_dict"):
        return serializers.ValidationError({"detail": exc.messages})
    detail: dict = {}
    for field, messages in exc.message_dict.items():
        if "." in field:
            group, sub = field.split(".", 1)
            detail.setdefault(group, {})[sub] = messages
        else:
            detail[field] = messages
    return serializers.ValidationError(detail)


# --- strategies ---------------------------------------------------------------------------
class StrategySerializer(serializers.ModelSerializer):
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, help_text="Stock symbols of the universe"
    )

    class Meta:
        model = Strategy
        fields = [
            "id",
            "name",
            "description",
            "strategy_class",
            "parameters",
            "timeframe",
            "symbols",
            "active",
            "kill_switch",
            "allow_short",
            "sizing_method",
            "position_fraction",
            "risk_per_trade",
            "stop_loss_type",
            "stop_loss_value",
            "take_profit_type",
            "take_profit_value",
            "max_open_positions",
            "fractional_shares",
            "risk_settings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["active", "kill_switch", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["symbols"] = [s.symbol for s in instance.stocks.all()]
        return data

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("expected a JSON object")
        return value

    def validate(self, attrs):
        # The whole row is checked by the model's rules (class, parameters, risk settings);
        # parameter errors come back per parameter.
        cls_key = attrs.get("strategy_class", getattr(self.instance, "strategy_class", None))
        parameters = attrs.get("parameters", getattr(self.instance, "parameters", {}) or {})
        try:
            get_strategy(cls_key).validate_parameters(parameters)
        except UnknownStrategy as exc:
            raise serializers.ValidationError({"strategy_class": [str(exc.args[0])]}) from None
        except ParameterError as exc:
            raise serializers.ValidationError(
                {"parameters": {field: [message] for field, message in exc.errors.items()}}
            ) from None
        return attrs

    def create(self, validated_data):
        symbols = validated_data.pop("symbols", [])
        try:
            return services.create_strategy(stocks=symbols, **validated_data)
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None

    def update(self, instance, validated_data):
        symbols = validated_data.pop("symbols", None)
        try:
            return services.update_strategy(instance, stocks=symbols, **validated_data)
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None


class StrategyViewSet(viewsets.ModelViewSet):
    queryset = Strategy.objects.prefetch_related("stocks")
    serializer_class = StrategySerializer
    filterset_fields = ["active", "strategy_class", "timeframe"]
    ordering_fields = ["name", "created_at"]

    def _set_active(self, request, active: bool):
        strategy = self.get_object()
        try:
            services.set_active(strategy, active)
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None
        return Response(self.get_serializer(strategy).data)

    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._set_active(request, True)

    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        return self._set_active(request, False)


class StrategyClassSerializer(serializers.Serializer):
    """A strategy class as ``Strategy.describe()`` gives it."""

    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    supports_short = serializers.BooleanField()
    parameters = serializers.DictField(help_text="name -> {type, default, min, max, choices, help}")


class StrategyClassViewSet(viewsets.ViewSet):
    """The strategy classes available (built-in and user modules) with their parameter schemas."""

    serializer_class = StrategyClassSerializer
    lookup_value_regex = r"[A-Za-z0-9_\-]+"

    @extend_schema(responses=StrategyClassSerializer(many=True))
    def list(self, request):
        return Response([cls.describe() for cls in all_strategies().values()])

    @extend_schema(
        responses=StrategyClassSerializer,
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="strategy key")],
    )
    def retrieve(self, request, pk=None):
        try:
            return Response(get_strategy(pk).describe())
        except UnknownStrategy as exc:
            raise NotFound(str(exc.args[0])) from None


# --- signals and events ---------------------------------------------------------------------
class TradeSignalSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = TradeSignal
        fields = "__all__"


class StrategyEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StrategyEvent
        fields = "__all__"


class TradeSignalViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = TradeSignal.objects.select_related("stock")
    serializer_class = TradeSignalSerializer
    filterset_fields = {
        "strategy": ["exact"],
        "stock__symbol": ["exact"],
        "signal_type": ["exact"],
        "executed": ["exact"],
        "timestamp": ["gte", "lte"],
    }
    ordering_fields = ["timestamp", "created_at"]


class StrategyEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = StrategyEvent.objects.all()
    serializer_class = StrategyEventSerializer
    filterset_fields = {
        "strategy": ["exact", "isnull"],
        "event_type": ["exact"],
        "severity": ["exact"],
        "created_at": ["gte", "lte"],
    }
    ordering_fields = ["created_at"]


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
            services.validate_backtest_request(
                inputs["strategy_class"],
                inputs["parameters"],
                inputs["symbols"],
                inputs["timeframe"],
                inputs["start"],
                inputs["end"],
                inputs["settings"],
            )
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None
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
            run = services.create_backtest_run(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None
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
    router.register("strategies", StrategyViewSet)
    router.register("strategy-classes", StrategyClassViewSet, basename="strategy-class")
    router.register("signals", TradeSignalViewSet)
    router.register("events", StrategyEventViewSet)
    router.register("backtests", BacktestRunViewSet)
    router.register("sweeps", SweepRunViewSet)
