"""JSON API for market data: viewsets registered on the project router."""

from rest_framework import serializers, viewsets
from rest_framework.routers import BaseRouter

from marketdata.models import Bar, Indicator, Stock


class StockSerializer(serializers.ModelSerializer):
    class Meta:
        model = Stock
        fields = ["id", "symbol", "name", "exchange", "currency", "active", "created_at", "updated_at"]


class BarSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Bar
        fields = ["id", "symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]


class IndicatorSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Indicator
        fields = ["id", "symbol", "timeframe", "timestamp", "name", "parameters", "value", "values"]


class StockViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Stock.objects.all()
    serializer_class = StockSerializer
    filterset_fields = ["symbol", "exchange", "active"]
    ordering_fields = ["symbol", "created_at"]


class BarViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Bar.objects.select_related("stock")
    serializer_class = BarSerializer
    filterset_fields = {"stock__symbol": ["exact"], "timeframe": ["exact"], "timestamp": ["gte", "lte"]}
    ordering_fields = ["timestamp"]


class IndicatorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Indicator.objects.select_related("stock")
    serializer_class = IndicatorSerializer
    filterset_fields = {"stock__symbol": ["exact"], "name": ["exact"], "timestamp": ["gte", "lte"]}
    ordering_fields = ["timestamp"]


def register(router: BaseRouter) -> None:
    router.register("stocks", StockViewSet)
    router.register("bars", BarViewSet)
    router.register("indicators", IndicatorViewSet)
