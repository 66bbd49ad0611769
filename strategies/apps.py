from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "strategies"

    def ready(self) -> None:
        # Imported here, once the app registry is ready, as django.contrib apps do.
        from marketdata.signals import bars_fetch_failed, bars_fetched
        from strategies import receivers

        bars_fetched.connect(receivers.journal_bars_fetched, dispatch_uid="strategies.journal_bars_fetched")
        bars_fetch_failed.connect(
            receivers.journal_bars_fetch_failed, dispatch_uid="strategies.journal_bars_fetch_failed"
        )
