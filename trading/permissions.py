"""API permissions: reading needs a signed-in user, writing needs a trader."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

TRADERS_GROUP = "traders"


def is_trader(user) -> bool:
    """Staff, or a member of the "traders" group."""
    return bool(
        user and user.is_authenticated and (user.is_staff or user.groups.filter(name=TRADERS_GROUP).exists())
    )


class IsTraderOrReadOnly(BasePermission):
    message = "Only traders (staff or the 'traders' group) may change anything."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or is_trader(request.user)
