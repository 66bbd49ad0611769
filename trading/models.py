"""State of the running system: the engine heartbeat; the traders' alert rules."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models


class EngineHeartbeat(models.Model):
    """One row per engine process, refreshed every few seconds; /health reads it."""

    engine_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField()
    broker = models.CharField(max_length=16)
    state = models.CharField(max_length=24, default="starting")
    details = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    last_beat = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "engine_heartbeats"
        ordering = ["-last_beat"]

    def __str__(self) -> str:
        return f"{self.engine_id} {self.state} @ {self.last_beat:%H:%M:%S}"


class AlertChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook (JSON POST)"


class AlertEventType(models.TextChoices):
    """The kinds of journal events a trader can be alerted about."""

    TRADE_OPENED = "trade_opened", "Trade opened"
    TRADE_CLOSED = "trade_closed", "Trade closed"
    RISK_REJECTION = "risk_rejection", "Risk rejection"
    PROTECTION_TRIGGERED = "protection_triggered", "Protection triggered"
    BROKER_DISCONNECTED = "broker_disconnected", "Broker disconnected"
    ERROR = "error", "Errors"


class AlertRule(models.Model):
    """Where one user wants to hear about some kinds of events (``trading.alerts`` sends)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100, blank=True)
    channel = models.CharField(max_length=8, choices=AlertChannel.choices)
    target = models.CharField(max_length=500, help_text="E-mail address, or the webhook URL")
    event_types = models.JSONField(default=list, help_text="AlertEventType values")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "alert_rules"
        ordering = ["user", "id"]

    def __str__(self) -> str:
        return self.name or f"{self.get_channel_display()} → {self.target}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        validator = (
            EmailValidator() if self.channel == AlertChannel.EMAIL else URLValidator(["http", "https"])
        )
        try:
            validator(self.target)
        except ValidationError:
            errors["target"] = (
                "Enter a valid e-mail address."
                if self.channel == AlertChannel.EMAIL
                else "Enter a valid http(s) URL."
            )
        valid = set(AlertEventType.values)
        if not isinstance(self.event_types, list) or not self.event_types:
            errors["event_types"] = "Choose at least one event type."
        elif bad := [t for t in self.event_types if t not in valid]:
            errors["event_types"] = f"Unknown event types {bad}; choose among {sorted(valid)}."
        if errors:
            raise ValidationError(errors)
