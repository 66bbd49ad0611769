"""JSON API of the running system: the overview a page resyncs from, positions, the live
equity curve, the caller's alert rules, and a token for scripts.

Reading needs a signed-in user, writing a trader (the project's default permission).
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from execution.selectors import open_positions
from trading.models import AlertChannel, AlertEventType, AlertRule
from trading.web.presenters import position_dict, with_drawdown
from trading.web.selectors.overview import equity_history, overview

# --- read models (documented in the schema) ----------------------------------------------------


class AccountSerializer(serializers.Serializer):
    equity = serializers.DecimalField(max_digits=24, decimal_places=6)
    realized_pnl = serializers.DecimalField(max_digits=24, decimal_places=6)
    unrealized_pnl = serializers.DecimalField(max_digits=24, decimal_places=6)
    day_pnl = serializers.DecimalField(max_digits=24, decimal_places=6)
    open_positions = serializers.IntegerField()
    trades_today = serializers.IntegerField()


class PositionSerializer(serializers.Serializer):
    trade_id = serializers.IntegerField()
    strategy_id = serializers.IntegerField(allow_null=True)
    strategy = serializers.CharField()
    symbol = serializers.CharField()
    direction = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=24, decimal_places=6)
    entry_price = serializers.DecimalField(max_digits=24, decimal_places=6)
    entry_time = serializers.DateTimeField()
    last_price = serializers.DecimalField(max_digits=24, decimal_places=6, allow_null=True)
    unrealized_pnl = serializers.DecimalField(max_digits=24, decimal_places=6, allow_null=True)
    stop_loss = serializers.DecimalField(max_digits=24, decimal_places=6, allow_null=True)
    take_profit = serializers.DecimalField(max_digits=24, decimal_places=6, allow_null=True)


class StrategyStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    strategy_class = serializers.CharField()
    timeframe = serializers.CharField()
    active = serializers.BooleanField()
    kill_switch = serializers.BooleanField()
    open_trades = serializers.IntegerField()
    last_signal = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=["active", "inactive", "killed"])
    locked_until = serializers.DateTimeField(allow_null=True, help_text="a protection blocks entries until")


class SignalBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy_id = serializers.IntegerField()
    strategy = serializers.CharField()
    symbol = serializers.CharField()
    signal_type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    price = serializers.DecimalField(max_digits=24, decimal_places=6)
    executed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class EventBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy_id = serializers.IntegerField(allow_null=True)
    strategy = serializers.CharField(allow_null=True)
    event_type = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()


class EngineSerializer(serializers.Serializer):
    running = serializers.BooleanField()
    state = serializers.CharField(required=False)
    broker = serializers.CharField(required=False)
    last_beat = serializers.DateTimeField(required=False)
    seconds_since_beat = serializers.FloatField(required=False)


class OverviewSerializer(serializers.Serializer):
    engine = EngineSerializer()
    account = AccountSerializer()
    positions = PositionSerializer(many=True)
    strategies = StrategyStateSerializer(many=True)
    kill_switch = serializers.BooleanField()
    signals = SignalBriefSerializer(many=True)
    events = EventBriefSerializer(many=True)


class EquityPointSerializer(serializers.Serializer):
    time = serializers.IntegerField(help_text="Epoch seconds (UTC)")
    equity = serializers.FloatField()
    drawdown = serializers.FloatField(help_text="Fall from the running peak, in %")


class OverviewViewSet(viewsets.ViewSet):
    """Everything the overview page shows; a page reloads it after a gap in the live feed."""

    @extend_schema(responses=OverviewSerializer)
    def list(self, request: Request) -> Response:
        return Response(overview())


class PositionQuerySerializer(serializers.Serializer):
    strategy = serializers.IntegerField(required=False, min_value=1)
    symbol = serializers.CharField(required=False, max_length=32)


class PositionViewSet(viewsets.ViewSet):
    """Open positions: open trades valued at the latest close."""

    @extend_schema(
        parameters=[
            OpenApiParameter("strategy", int, description="only this strategy's positions"),
            OpenApiParameter("symbol", str, description="only this symbol"),
        ],
        responses=PositionSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        query = PositionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        strategy, symbol = query.validated_data.get("strategy"), query.validated_data.get("symbol", "")
        positions = [
            position_dict(p)
            for p in open_positions()
            if (strategy is None or p.strategy_id == strategy) and (not symbol or p.symbol == symbol.upper())
        ]
        return Response(positions)


class EquityViewSet(viewsets.ViewSet):
    """The account's equity curve (engine snapshots, else after each closed trade) with drawdown."""

    @extend_schema(responses=EquityPointSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(with_drawdown(equity_history()))


# --- alert rules ----------------------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=AlertEventType.choices), allow_empty=False
    )
    channel = serializers.ChoiceField(choices=AlertChannel.choices)

    class Meta:
        model = AlertRule
        fields = ["id", "name", "channel", "target", "event_types", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        # The model's clean() holds the rules (target matches the channel); reuse them.
        instance = AlertRule(**{**self._current(), **attrs})
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in ("name", "channel", "target", "event_types", "enabled")}


class AlertRuleFilter(filters.FilterSet):
    class Meta:
        model = AlertRule
        fields = ["channel", "enabled"]


class AlertRuleViewSet(viewsets.ModelViewSet):
    """The signed-in user's own alert rules (others' are invisible)."""

    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    ordering_fields = ["id", "created_at", "name"]
    queryset = AlertRule.objects.none()  # for the schema; the real one is per user

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return AlertRule.objects.filter(user=self.request.user).order_by("id")

    def perform_create(self, serializer: AlertRuleSerializer) -> None:
        serializer.save(user=self.request.user)


# --- tokens for scripts -----------------------------------------------------------------------


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class TokenViewSet(viewsets.GenericViewSet, mixins.CreateModelMixin):
    """Exchange a username and password for the user's API token (created once, reused).

    Send it as ``Authorization: Token <key>``. ``manage.py drf_create_token USER`` does
    the same from the shell.
    """

    serializer_class = AuthTokenSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(request=AuthTokenSerializer, responses={200: TokenSerializer, 400: OpenApiResponse()})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key}, status=status.HTTP_200_OK)


def register(router: BaseRouter) -> None:
    """Add this app's viewsets to ``router``."""
    router.register("overview", OverviewViewSet, basename="overview")
    router.register("positions", PositionViewSet, basename="positions")
    router.register("equity", EquityViewSet, basename="equity")
    router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
    router.register("token", TokenViewSet, basename="token")
