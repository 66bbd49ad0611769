"""JSON API for strategies, signals, events and backtests."""

from rest_framework import serializers, viewsets
from rest_framework.routers import BaseRouter

from strategies.models import BacktestRun, Strategy, StrategyEvent, TradeSignal


class StrategySerializer(serializers.ModelSerializer):
    class Meta:
        model = Strategy
        fields = "__all__"


class TradeSignalSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = TradeSignal
        fields = "__all__"


class StrategyEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StrategyEvent
        fields = "__all__"


class BacktestRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = BacktestRun
        fields = "__all__"


class StrategyViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Strategy.objects.prefetch_related("stocks")
    serializer_class = StrategySerializer
    filterset_fields = ["active", "strategy_class", "timeframe"]
    ordering_fields = ["name", "created_at"]


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


class BacktestRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = BacktestRun.objects.all()
    serializer_class = BacktestRunSerializer
    filterset_fields = ["strategy", "strategy_class", "status"]
    ordering_fields = ["created_at"]


def register(router: BaseRouter) -> None:
    router.register("strategies", StrategyViewSet)
    router.register("signals", TradeSignalViewSet)
    router.register("events", StrategyEventViewSet)
    router.register("backtests", BacktestRunViewSet)
