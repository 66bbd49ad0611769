from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        # Receivers are connected here, once every app's models are loaded, as
        # django.contrib apps do (a models module importing its receivers would cycle).
        from django.db.models.signals import post_save

        from strategies.models import StrategyEvent
        from trading import alerts
        from trading.realtime import receivers

        receivers.connect()
        post_save.connect(alerts.on_event, sender=StrategyEvent, dispatch_uid="trading.alerts.on_event")
