"""The in-app bell (unread count, refreshed by htmx), the inbox and marking messages read."""

from django.shortcuts import redirect, render

from scrm.views import StaffView

from . import selectors, services


class BellView(StaffView):
    def get(self, request):
        return render(request, "notifications/_bell.html", {"unread": selectors.unread_count(user=request.user)})


class InboxView(StaffView):
    def get(self, request):
        return render(request, "notifications/inbox.html", {
            "items": selectors.inbox(user=request.user, limit=50),
            "unread": selectors.unread_count(user=request.user),
        })

    def post(self, request):
        ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()] or None
        services.notifications_mark_read(user=request.user, ids=ids)
        return redirect("notification-inbox")


