"""Notification writes, one module per job: `emit` (an event → outbox rows, in the caller's
transaction), `delivery` (one row sent at most once, retries, dead letters, the inbox's read
receipts), `sweep` (handing rows to Celery, finding owed ones, retry and release) and `settings`
(message templates, staff preferences). Import the public names from here."""

from .delivery import notification_deliver, notifications_deliver, notifications_mark_read
from .emit import STAFF_DEFAULT_CHANNELS, emits_held, event_emit, event_emit_many
from .settings import (
    notification_template_reset,
    notification_template_save,
    preference_clean,
    preferences_save,
    template_clean,
)
from .sweep import notification_retry, notifications_due, notifications_sweep, tenant_channels_waiting_release

__all__ = [
    "STAFF_DEFAULT_CHANNELS",
    "emits_held",
    "event_emit",
    "event_emit_many",
    "notification_deliver",
    "notification_retry",
    "notification_template_reset",
    "notification_template_save",
    "notifications_deliver",
    "notifications_due",
    "notifications_mark_read",
    "notifications_sweep",
    "preference_clean",
    "preferences_save",
    "template_clean",
    "tenant_channels_waiting_release",
]
