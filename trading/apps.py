from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        # Receivers of the lower apps' signals are connected here, once every app is
        # loaded, as django.contrib apps do (a lower app never imports trading).
        from execution.backtest.signals import backtest_finished
        from trading.broadcast import on_backtest_finished

        backtest_finished.connect(on_backtest_finished, dispatch_uid="trading.broadcast.on_backtest_finished")
