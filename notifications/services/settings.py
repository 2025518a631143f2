"""The managers' and staff's notification settings: message templates per event × channel ×
language (checked in the sandbox before they are saved) and personal preferences (channels,
minimum priority, quiet hours)."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from scrm.models import Membership

from ..models import (
    CODED_CHANNELS,
    STAFF_CHANNELS,
    STAFF_EVENTS,
    TEMPLATE_CHANNELS,
    DeliveryStatus,
    Event,
    Notification,
    NotificationTemplate,
    Preference,
    Priority,
)
from ..offered import event_offered
from ..rendering import template_check
from .sweep import _release


def _language_codes():
    return [code for code, _name in settings.LANGUAGES]


def _choice_errors(*, event=None, channel=None, language=None, events=None, channels=None):
    errors = {}
    if event is not None and event not in (events or Event.values):
        errors["event"] = _("Select a valid choice. That choice is not one of the available choices.")
    if channel is not None and channel not in (channels or TEMPLATE_CHANNELS):
        errors["channel"] = _("Select a valid choice. That choice is not one of the available choices.")
    if language is not None and language not in _language_codes():
        errors["language"] = _("Select a valid choice. That choice is not one of the available choices.")
    return errors


def template_clean(*, channel, subject, body, sms_template_code):
    """Field errors of a template's wording (dict), empty if it is fine. Every template problem
    names its line (see rendering.template_check)."""
    errors = {}
    if len(subject) > 200:
        errors["subject"] = _("Ensure this value has at most %(n)d characters.") % {"n": 200}
    if not body.strip():
        errors["body"] = _("This field is required.")
    for name, source in (("subject", subject), ("body", body)):
        if name in errors:
            continue
        try:
            template_check(source)
        except ValidationError as exc:
            errors[name] = exc.messages[0]
    if len(sms_template_code) > 64:
        errors["sms_template_code"] = _("Ensure this value has at most %(n)d characters.") % {"n": 64}
    elif channel in CODED_CHANNELS and not sms_template_code:
        errors["sms_template_code"] = _("SMS and WeChat send only templates the provider approved: enter its code.")
    elif sms_template_code and not all(c.isalnum() or c in "_-" for c in sms_template_code):
        errors["sms_template_code"] = _("Use letters, digits, “_” and “-” only.")
    return errors


@transaction.atomic
def notification_template_save(*, tenant, event, channel, language, subject="", body, sms_template_code=""):
    """Create or replace the tenant's wording for event × channel × language. Raises
    ValidationError (field → message) and writes nothing if anything is wrong."""
    subject, body, sms_template_code = (subject or "").strip(), body or "", (sms_template_code or "").strip()
    errors = _choice_errors(event=event, channel=channel, language=language)
    errors.update(template_clean(channel=channel, subject=subject, body=body, sms_template_code=sms_template_code))
    if errors:
        raise ValidationError(errors)
    template, _created = NotificationTemplate.objects.update_or_create(
        tenant=tenant, event=event, channel=channel, language=language,
        defaults={"subject": subject, "body": body, "sms_template_code": sms_template_code},
    )
    if channel in CODED_CHANNELS:
        # Messages that waited for this provider template go again (credentials still missing: they wait again).
        _release(Notification.objects.filter(tenant=tenant, status=DeliveryStatus.WAITING, event=event,
                                             channel=channel), tenant_id=tenant.pk)
    return template


@transaction.atomic
def notification_template_reset(*, tenant, template):
    """Delete a saved template: the built-in wording applies again."""
    if template.tenant_id != tenant.pk:
        raise ValidationError(_("Select a valid choice. That choice is not one of the available choices."))
    template.delete()


def preference_clean(*, channels, min_priority, quiet_start, quiet_end):
    """Field errors of one preference row (dict), empty if it is fine."""
    errors = {}
    channels = list(channels or [])
    if any(c not in STAFF_CHANNELS for c in channels) or len(set(channels)) != len(channels):
        errors["channels"] = _("Select a valid choice. That choice is not one of the available choices.")
    if min_priority not in Priority.values:
        errors["min_priority"] = _("Select a valid choice. That choice is not one of the available choices.")
    for name, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if value is not None and not isinstance(value, datetime.time):
            errors[name] = _("Enter a valid time.")
    if "quiet_start" not in errors and "quiet_end" not in errors:
        if (quiet_start is None) != (quiet_end is None):
            errors["quiet_end" if quiet_end is None else "quiet_start"] = _(
                "Set both ends of the quiet hours, or neither.")
        elif quiet_start is not None and quiet_start == quiet_end:
            errors["quiet_end"] = _("Quiet hours must end at another time than they start.")
    return errors


@transaction.atomic
def preferences_save(*, tenant, user, rows):
    """Save a staff member's preferences: `rows` maps event → {channels, min_priority,
    quiet_start, quiet_end}. All or nothing: raises ValidationError ("event: field" → message)."""
    if not Membership.objects.filter(tenant=tenant, user=user, is_active=True).exists():
        raise ValidationError(_("Select a member of staff of this tenant."))
    errors = {}
    for event, row in rows.items():
        if event not in STAFF_EVENTS or not event_offered(event):
            errors[str(event)[:30]] = _("Select a valid choice. That choice is not one of the available choices.")
            continue
        for field, message in preference_clean(**row).items():
            errors[f"{event}:{field}"] = message
    if errors:
        raise ValidationError(errors)
    saved = []
    for event, row in rows.items():
        preference, _created = Preference.objects.update_or_create(
            tenant=tenant, user=user, event=event,
            defaults={"channels": list(dict.fromkeys(row["channels"])), "min_priority": row["min_priority"],
                      "quiet_start": row["quiet_start"], "quiet_end": row["quiet_end"]},
        )
        saved.append(preference)
    return saved
