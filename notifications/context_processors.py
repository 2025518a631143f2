"""The unread in-app notification count of the base layout's bell, read only when the layout
shows it (staff pages with a tenant)."""

from .selectors import unread_count


def unread(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": lambda: _unread(request)}


def _unread(request):
    if getattr(request, "tenant", None) is None:
        return 0
    return unread_count(user=request.user)
