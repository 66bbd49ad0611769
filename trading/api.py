"""JSON API for this app: viewsets registered on the project router."""

from rest_framework.routers import BaseRouter


def register(router: BaseRouter) -> None:
    """Add this app's viewsets to ``router``."""
