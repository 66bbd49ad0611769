"""JSON API for market data: viewsets registered on the project router.

Stocks: CRUD (writes need a trader) plus ``POST /api/stocks/{id}/fetch/`` which queues a
fetch of that stock's bars now. Bars and indicators: read-only, filtered by ``symbol``,
``timeframe``, ``from``/``to`` (ISO times), and for indicators ``name``; paginated.
"""

import django_filters
from django.db.models import ProtectedError
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from marketdata.models import Bar, Indicator, Stock
from marketdata.services import clean_symbol
from marketdata.tasks import fetch_stock_bars
from marketdata.timeframes import Timeframe


class StockSerializer(serializers.ModelSerializer):
    class Meta:
        model = Stock
        fields = ["id", "symbol", "name", "exchange", "currency", "active", "created_at", "updated_at"]

    def validate_symbol(self, value: str) -> str:
        try:
            return clean_symbol(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_exchange(self, value: str) -> str:
        return value.strip().upper()

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("expected a 3-letter currency code such as USD")
        return value.upper()


class BarSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Bar
        fields = ["id", "symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]


class IndicatorSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True)

    class Meta:
        model = Indicator
        fields = [
            "id",
            "symbol",
            "timeframe",
            "timestamp",
            "name",
            "params_key",
            "parameters",
            "value",
            "values",
        ]


class FetchSerializer(serializers.Serializer):
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, default=Timeframe.DAY_1)
    start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["start"] and attrs["end"] and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "must not be after end"})
        return attrs


def _range_filterset(model, extra: dict) -> type[django_filters.FilterSet]:
    # "from" is a Python keyword, so the filter set is built from a dict.
    attrs = {
        "symbol": django_filters.CharFilter(field_name="stock__symbol", lookup_expr="iexact"),
        "timeframe": django_filters.ChoiceFilter(choices=Timeframe.choices),
        "from": django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte"),
        "to": django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lte"),
        "Meta": type("Meta", (), {"model": model, "fields": {"timestamp": ["gte", "lte"]}}),
        **extra,
    }
    return type(f"{model.__name__}Filter", (django_filters.FilterSet,), attrs)


BarFilter = _range_filterset(Bar, {})
IndicatorFilter = _range_filterset(
    Indicator,
    {
        "name": django_filters.CharFilter(field_name="name", lookup_expr="iexact"),
        "params_key": django_filters.CharFilter(field_name="params_key"),
    },
)


class StockViewSet(viewsets.ModelViewSet):
    queryset = Stock.objects.all()
    serializer_class = StockSerializer
    filterset_fields = ["symbol", "exchange", "active"]
    ordering_fields = ["symbol", "created_at"]

    def destroy(self, request, *args, **kwargs):
        stock = self.get_object()
        try:
            stock.delete()
        except ProtectedError:
            detail = f"{stock.symbol} has orders or trades; deactivate it instead (PATCH active=false)."
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], serializer_class=FetchSerializer)
    def fetch(self, request, pk=None):
        """Queue a fetch of this stock's bars now (incremental unless start is given)."""
        stock = self.get_object()
        params = FetchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        result = fetch_stock_bars.enqueue(
            stock.pk,
            data["timeframe"],
            data["start"].isoformat() if data["start"] else None,
            data["end"].isoformat() if data["end"] else None,
        )
        body = {"task_id": str(result.id), "status": str(result.status), "symbol": stock.symbol}
        if result.is_finished:
            body["result"] = result.return_value
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BarViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Bar.objects.select_related("stock").order_by("stock_id", "timeframe", "timestamp")
    serializer_class = BarSerializer
    filterset_class = BarFilter
    ordering_fields = ["timestamp"]


class IndicatorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Indicator.objects.select_related("stock").order_by(
        "stock_id", "timeframe", "name", "timestamp"
    )
    serializer_class = IndicatorSerializer
    filterset_class = IndicatorFilter
    ordering_fields = ["timestamp"]


def register(router: BaseRouter) -> None:
    router.register("stocks", StockViewSet)
    router.register("bars", BarViewSet)
    router.register("indicators", IndicatorViewSet)
