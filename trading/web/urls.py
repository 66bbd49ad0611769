"""The trader's pages (all behind sign-in)."""

from django.urls import path

from trading.web.views import alerts, backtests, events, orders, overview, stocks, strategies, trades

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("kill-switch/", overview.kill_switch, name="kill-switch"),
    path("strategies/", strategies.strategy_list, name="strategies"),
    path("strategies/<int:pk>/", strategies.strategy_detail, name="strategy-detail"),
    path("strategies/<int:pk>/activation/", strategies.strategy_activation, name="strategy-activation"),
    path("strategies/<int:pk>/backtest/", strategies.strategy_backtest, name="strategy-backtest"),
    path("stocks/", stocks.stock_list, name="stocks"),
    path("stocks/<str:symbol>/", stocks.stock_detail, name="stock-detail"),
    path("trades/", trades.trade_list, name="trades"),
    path("trades/<int:pk>/", trades.trade_detail, name="trade-detail"),
    path("trades/<int:pk>/close/", trades.trade_close, name="trade-close"),
    path("orders/", orders.order_list, name="orders"),
    path("orders/<int:pk>/cancel/", orders.order_cancel, name="order-cancel"),
    path("events/", events.event_list, name="events"),
    path("backtests/", backtests.backtest_list, name="backtests"),
    path("backtests/compare/", backtests.backtest_compare, name="backtest-compare"),
    path("backtests/<int:pk>/", backtests.backtest_detail, name="backtest-detail"),
    path("alerts/", alerts.alert_rules, name="alerts"),
]
