"""JSON API for orders, fills, trades, protections, the kill switch and engine commands
(and, from ``execution.backtest.api``, backtests and sweeps).

Writes never touch the broker: cancel, close and the kill switch become EngineCommands
that the engine carries out within a second (202 Accepted with the command); follow them
at ``/api/engine-commands/<id>/`` or on the ``engine`` and ``orders`` groups.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from execution import engine_commands, risk
from execution.backtest import api as backtest_api
from execution.models import EngineCommand, Fill, Order, Protection, ProtectionKind, Trade
from strategies.events import record_event
from strategies.models import Strategy


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


class EngineCommandSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, default=None)

    class Meta:
        model = EngineCommand
        fields = "__all__"


class ProtectionSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="stock.symbol", read_only=True, default=None)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Protection
        fields = ["id", "strategy", "stock", "symbol", "kind", "reason", "created_at", "expires_at", "active"]
        read_only_fields = ["id", "created_at", "active", "symbol"]
        extra_kwargs = {"kind": {"required": False}}

    def get_active(self, obj: Protection) -> bool:
        return obj.expires_at > timezone.now()

    def validate(self, attrs: dict) -> dict:
        if attrs.get("expires_at") and attrs["expires_at"] <= timezone.now():
            raise serializers.ValidationError({"expires_at": "must be in the future"})
        return attrs


class KillSwitchSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    strategy = serializers.PrimaryKeyRelatedField(
        queryset=Strategy.objects.all(), required=False, allow_null=True
    )
    close_positions = serializers.BooleanField(default=False)


def _accepted(command: EngineCommand) -> Response:
    return Response(EngineCommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)


def _refused(exc: Exception) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


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

    @extend_schema(request=None, responses={202: EngineCommandSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Ask the engine to cancel this order (202 with the command; 400 if not open)."""
        try:
            return _accepted(engine_commands.request_cancel_order(self.get_object(), request.user))
        except engine_commands.CommandError as exc:
            return _refused(exc)


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

    @extend_schema(request=None, responses={202: EngineCommandSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk=None) -> Response:
        """Ask the engine to close this trade at market (exit reason: manual)."""
        try:
            return _accepted(engine_commands.request_close_trade(self.get_object(), request.user))
        except engine_commands.CommandError as exc:
            return _refused(exc)


class ProtectionViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Protection locks: list them, add a manual one, delete one to lift it."""

    queryset = Protection.objects.select_related("stock", "strategy")
    serializer_class = ProtectionSerializer
    filterset_fields = {
        "strategy": ["exact", "isnull"],
        "stock": ["exact"],
        "kind": ["exact"],
        "expires_at": ["gte"],
    }
    ordering_fields = ["created_at", "expires_at"]

    def perform_create(self, serializer) -> None:
        kind = serializer.validated_data.get("kind") or ProtectionKind.MANUAL
        protection = serializer.save(kind=kind, created_at=timezone.now())
        record_event(
            "protection.created",
            f"{kind} lock added by {self.request.user.username} until "
            f"{protection.expires_at:%Y-%m-%d %H:%M}: {protection.reason}",
            strategy=protection.strategy,
            protection_id=protection.pk,
        )

    def perform_destroy(self, instance: Protection) -> None:
        record_event(
            "protection.removed",
            f"{instance.kind} lock removed by {self.request.user.username}: {instance.reason}",
            strategy=instance.strategy,
            protection_id=instance.pk,
        )
        instance.delete()


class EngineCommandViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = EngineCommand.objects.select_related("requested_by")
    serializer_class = EngineCommandSerializer
    filterset_fields = ["status", "kind"]
    ordering_fields = ["created_at"]


class KillSwitchViewSet(viewsets.ViewSet):
    """GET: the global switch and the strategies whose switch is on. POST {"enabled": true,
    "strategy": id or null, "close_positions": false}: turn one on or off (202)."""

    serializer_class = KillSwitchSerializer

    @extend_schema(responses={200: dict})
    def list(self, request: Request) -> Response:
        return Response(
            {
                "global": risk.global_kill_switch(),
                "strategies": list(Strategy.objects.filter(kill_switch=True).values_list("pk", flat=True)),
            }
        )

    @extend_schema(request=KillSwitchSerializer, responses={202: EngineCommandSerializer})
    def create(self, request: Request) -> Response:
        serializer = KillSwitchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        command = engine_commands.set_kill_switch(
            data["enabled"], data.get("strategy"), request.user, close_positions=data["close_positions"]
        )
        return _accepted(command)


def register(router: BaseRouter) -> None:
    backtest_api.register(router)
    router.register("orders", OrderViewSet)
    router.register("fills", FillViewSet)
    router.register("trades", TradeViewSet)
    router.register("protections", ProtectionViewSet)
    router.register("engine-commands", EngineCommandViewSet)
    router.register("kill-switch", KillSwitchViewSet, basename="kill-switch")
