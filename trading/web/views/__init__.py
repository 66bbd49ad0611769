"""The trader's pages, one module per page (all behind sign-in) plus /health.

Reads come from trading.web.selectors (shaped by trading.web.presenters) and
execution.reports; writes go through trading.actions, which call the owning app's
services. Views only glue them to HTTP.
"""
