"""Notification reads: a ticket's deliveries for its timeline, a person's in-app inbox, the
template grid managers edit (saved wording or the built-in default), a person's preferences."""

from dataclasses import dataclass

from django.conf import settings

from .defaults import default_template
from .models import STAFF_EVENTS, TEMPLATE_CHANNELS, ChannelName, Event, Notification, NotificationTemplate, Preference
from .offered import event_offered, events_offered


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


# --- templates --------------------------------------------------------------------------

@dataclass
class TemplateSlot:
    """One event × channel × language: the tenant's saved template, or the built-in wording."""

    event: str
    channel: str
    language: str
    template: NotificationTemplate | None
    subject: str
    body: str
    sms_template_code: str = ""

    @property
    def is_default(self):
        return self.template is None

    @property
    def event_label(self):
        return Event(self.event).label

    @property
    def channel_label(self):
        return ChannelName(self.channel).label

    @property
    def language_label(self):
        return dict(settings.LANGUAGES).get(self.language, self.language)


def _slot(event, channel, language, template):
    if template is not None:
        return TemplateSlot(event, channel, language, template, template.subject, template.body,
                            template.sms_template_code)
    subject, body = default_template(event, language)
    return TemplateSlot(event, channel, language, None, subject, body)


def template_grid(*, event="", channel="", language=""):
    """Every event × channel × language slot (optionally narrowed), saved or default; one query."""
    saved = NotificationTemplate.objects.all()
    if event:
        saved = saved.filter(event=event)
    if channel:
        saved = saved.filter(channel=channel)
    if language:
        saved = saved.filter(language=language)
    by_key = {(t.event, t.channel, t.language): t for t in saved}
    return [
        _slot(e.value, c.value, code, by_key.get((e.value, c.value, code)))
        for e in events_offered() if not event or e == event
        for c in TEMPLATE_CHANNELS if not channel or c == channel
        for code, _name in settings.LANGUAGES if not language or code == language
    ]


def template_slot(*, event, channel, language):
    template = NotificationTemplate.objects.filter(event=event, channel=channel, language=language).first()
    return _slot(event, channel, language, template)


def template_get(*, pk):
    """A saved template of the tenant in scope, or None (also for another tenant's id)."""
    return NotificationTemplate.objects.filter(pk=pk).first()


# --- preferences ------------------------------------------------------------------------

def preferences_of(*, user):
    """event → the user's Preference (missing events use the defaults), for the events staff get."""
    saved = {p.event: p for p in Preference.objects.filter(user=user)}
    return {event.value: saved.get(event.value) for event in STAFF_EVENTS if event_offered(event.value)}
