"""The trader's pages (all behind sign-in)."""

from django.urls import path

from trading import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("kill-switch/", views.kill_switch, name="kill-switch"),
    path("strategies/", views.strategy_list, name="strategies"),
    path("strategies/<int:pk>/", views.strategy_detail, name="strategy-detail"),
    path("strategies/<int:pk>/activation/", views.strategy_activation, name="strategy-activation"),
    path("strategies/<int:pk>/backtest/", views.strategy_backtest, name="strategy-backtest"),
    path("stocks/", views.stock_list, name="stocks"),
    path("stocks/<str:symbol>/", views.stock_detail, name="stock-detail"),
    path("trades/", views.trade_list, name="trades"),
    path("trades/<int:pk>/", views.trade_detail, name="trade-detail"),
    path("trades/<int:pk>/close/", views.trade_close, name="trade-close"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order-cancel"),
    path("events/", views.event_list, name="events"),
    path("backtests/", views.backtest_list, name="backtests"),
    path("backtests/compare/", views.backtest_compare, name="backtest-compare"),
    path("backtests/<int:pk>/", views.backtest_detail, name="backtest-detail"),
    path("alerts/", views.alert_rules, name="alerts"),
]
