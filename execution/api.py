"""JSON API for orders, fills and trades."""

from rest_framework import serializers, viewsets
from rest_framework.routers import BaseRouter

from execution.models import Fill, Order, Trade


class OrderSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Order
        fields = "__all__"


class FillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fill
        fields = "__all__"


class TradeSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Trade
        fields = "__all__"


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Order.objects.select_related("stock")
    serializer_class = OrderSerializer
    filterset_fields = {
        "strategy": ["exact"],
        "stock__symbol": ["exact"],
        "status": ["exact", "in"],
        "side": ["exact"],
        "created_at": ["gte", "lte"],
    }
    ordering_fields = ["created_at", "submitted_at"]


class FillViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Fill.objects.all()
    serializer_class = FillSerializer
    filterset_fields = ["order"]
    ordering_fields = ["timestamp"]


class TradeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Trade.objects.select_related("stock")
    serializer_class = TradeSerializer
    filterset_fields = {
        "strategy": ["exact"],
        "stock__symbol": ["exact"],
        "status": ["exact"],
        "direction": ["exact"],
        "entry_time": ["gte", "lte"],
        "exit_time": ["gte", "lte"],
    }
    ordering_fields = ["entry_time", "exit_time", "realized_pnl"]


def register(router: BaseRouter) -> None:
    router.register("orders", OrderViewSet)
    router.register("fills", FillViewSet)
    router.register("trades", TradeViewSet)
