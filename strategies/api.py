"""JSON API for strategies, strategy classes, signals and events (backtests and sweeps:
``execution.backtest.api``).

Serializers and views stay thin: validation and every change go through
``strategies.services``. Bad input is a 400 with one message list per field
(``{"parameters": {"fast": ["must be less than slow (30), got 40"]}}``), never a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from strategies import services
from strategies.base import ParameterError
from strategies.models import Strategy, StrategyEvent, TradeSignal
from strategies.registry import UnknownStrategy, all_strategies, get_strategy


def drf_errors(exc: DjangoValidationError) -> serializers.ValidationError:
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
            raise drf_errors(exc) from None

    def update(self, instance, validated_data):
        symbols = validated_data.pop("symbols", None)
        try:
            return services.update_strategy(instance, stocks=symbols, **validated_data)
        except DjangoValidationError as exc:
            raise drf_errors(exc) from None


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
            raise drf_errors(exc) from None
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


def register(router: BaseRouter) -> None:
    router.register("strategies", StrategyViewSet)
    router.register("strategy-classes", StrategyClassViewSet, basename="strategy-class")
    router.register("signals", TradeSignalViewSet)
    router.register("events", StrategyEventViewSet)
