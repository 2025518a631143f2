"""Notification reads: a ticket's deliveries for its timeline, a person's in-app inbox."""

from .models import ChannelName, Notification


def ticket_notifications(*, ticket):
    return list(
        Notification.objects.filter(ticket=ticket).exclude(channel=ChannelName.INAPP)
        .select_related("user", "customer").order_by("created_at", "id")
    )


def inbox(*, user, limit=20):
    return list(
        Notification.objects.filter(user=user, channel=ChannelName.INAPP).select_related("ticket")
        .order_by("-created_at", "-id")[:limit]
    )


def unread_count(*, user):
    return Notification.objects.filter(user=user, channel=ChannelName.INAPP, read_at__isnull=True).count()
