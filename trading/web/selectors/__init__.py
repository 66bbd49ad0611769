"""Reads behind the pages and the resync API, one module per page: plain functions
returning querysets, domain objects or JSON-ready data (shaped by trading.web.presenters).
Writes go through trading.actions."""
