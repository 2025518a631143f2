"""Site visit writes (现场签到/签退, photos, the customer's signature, the manager's review of a
flagged check-in). One transaction each; each writes its timeline event; a refused one writes
nothing. Only the person holding the ticket (its assignee, or the holder of an open workflow
task on it) may check in, upload visit photos or collect the signature."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import extensions
from .. import fields as schema
from ..geo import CoordinateError, Point, checkin_verdict, distance_m, png_has_ink, point_parse, wgs84_to_gcj02
from ..models import EventKind, SiteVisit, Ticket
from ..models_visits import FLAGGED_VERDICTS
from ..selectors_visits import ticket_site_point
from .core import _actor_label, attachment_store, timeline_event_add

PHASES = ("before", "after")
MAX_REASON = 500


def visit_radius_m() -> int:
    return int(getattr(settings, "FIELDSERVICE_RADIUS_M", 300))


def _position(lat, lng) -> Point | None:
    try:
        point = point_parse(lat, lng)
    except CoordinateError:
        raise ValidationError({"position": _(
            "The position is not valid: latitude must be within ±90 and longitude within ±180.")}) from None
    if point is not None and getattr(settings, "FIELDSERVICE_DATUM", "gcj02") == "gcj02":
        point = wgs84_to_gcj02(point)
    return point


def ticket_held_by(*, ticket, user) -> bool:
    """True if the user holds the ticket: its assignee, or (through the workflow's visibility
    seam) the handler, backup or co-handler of an open task on it."""
    if user is None or not user.is_authenticated:
        return False
    if ticket.assignee_id == user.pk:
        return True
    holder_q = extensions.visibility_q(user=user)
    return holder_q is not None and Ticket.objects.filter(holder_q, pk=ticket.pk).exists()


def _check_holder(ticket, actor, *, open_only=True):
    # Check-out and the signature stay possible once the ticket is resolved or closed: the visit
    # that started must be able to end, and the customer often signs after the work is marked done.
    if not ticket_held_by(ticket=ticket, user=actor):
        raise ValidationError({"__all__": _("Only the engineer holding this ticket can do this.")})
    if open_only and not ticket.is_open:
        raise ValidationError({"__all__": _("Only an open ticket can be visited.")})


def _reason(reason) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": _("Ensure this value has at most %(n)d characters.") % {"n": MAX_REASON}})
    return reason


def _time_text(moment):
    return timezone.localtime(moment).strftime("%H:%M")


@transaction.atomic
def site_checkin(*, ticket, actor, lat=None, lng=None, accuracy=None, reason="", photo=None, now=None):
    """Check in at the ticket's site. Within the radius: accepted. Outside it, or without a
    position (no permission, no signal): accepted only with a reason — and a photo when there is
    no position —, and flagged for the manager. Returns the visit."""
    _check_holder(ticket, actor)
    position = _position(lat, lng)
    reason = _reason(reason)
    site, source = ticket_site_point(ticket)
    radius = visit_radius_m()
    verdict = checkin_verdict(position=position, site=site, radius_m=radius)
    if verdict.verdict == "outside" and not reason:
        raise ValidationError({"reason": ValidationError(_(
            "You are %(distance)s m from the site (allowed %(radius)s m). Say why to check in here.")
            % {"distance": verdict.distance_m, "radius": radius}, code="needs_reason")})
    if verdict.verdict == "no_location" and not (reason and photo):
        raise ValidationError({"reason": ValidationError(_(
            "Without your location, give a reason and a photo of the site to check in."), code="needs_reason")})
    if photo is not None:
        schema.upload_check(photo, kind="image", max_size_mb=photo_max_mb())
    try:
        accuracy_m = None if accuracy in (None, "") else max(0, min(int(float(accuracy)), 100_000))
    except (TypeError, ValueError):
        accuracy_m = None  # the accuracy is advisory; a bad one is dropped, not refused
    if SiteVisit.objects.filter(ticket=ticket, engineer=actor, checked_out_at__isnull=True).exists():
        raise ValidationError({"__all__": _("You have already checked in here; check out first.")})
    now = now or timezone.now()
    event = timeline_event_add(ticket=ticket, kind=EventKind.CHANGED, actor=actor, is_public=True,
                               code="ticket.site_checkin", params={"name": _actor_label(actor),
                                                                   "time": _time_text(now)})
    in_photo = None
    if photo is not None:
        in_photo = attachment_store(ticket=ticket, upload=photo, is_public=False, actor=actor, event=event,
                                    field_key="site_checkin")
    try:
        with transaction.atomic():  # a concurrent double tap meets the one-open-visit constraint
            return SiteVisit.objects.create(
                tenant_id=ticket.tenant_id, ticket=ticket, engineer=actor, site_lat=site.lat if site else None,
                site_lng=site.lng if site else None, site_source=source, radius_m=radius, checked_in_at=now,
                in_lat=position.lat if position else None, in_lng=position.lng if position else None,
                in_accuracy_m=accuracy_m, in_distance_m=verdict.distance_m, verdict=verdict.verdict,
                flagged=verdict.verdict in FLAGGED_VERDICTS, reason=reason, in_photo=in_photo,
            )
    except IntegrityError:
        raise ValidationError({"__all__": _("You have already checked in here; check out first.")}) from None


@transaction.atomic
def site_checkout(*, ticket, actor, lat=None, lng=None, now=None):
    """Check out: the time on site is recorded (settlement bills it). A check-out far from the
    site is accepted but flagged for the manager."""
    _check_holder(ticket, actor, open_only=False)
    position = _position(lat, lng)
    visit = (SiteVisit.objects.select_for_update()
             .filter(ticket=ticket, engineer=actor, checked_out_at__isnull=True).first())
    if visit is None:
        raise ValidationError({"__all__": _("Check in before checking out.")})
    now = now or timezone.now()
    if now < visit.checked_in_at:
        raise ValidationError({"__all__": _("The check-out time is before the check-in.")})
    visit.checked_out_at = now
    visit.minutes_on_site = int((now - visit.checked_in_at) // datetime.timedelta(minutes=1))
    if position is not None:
        visit.out_lat, visit.out_lng = position.lat, position.lng
        if visit.site_lat is not None:
            visit.out_distance_m = distance_m(position, Point(visit.site_lat, visit.site_lng))
            visit.out_flagged = visit.out_distance_m > visit.radius_m
    visit.save(update_fields=["checked_out_at", "minutes_on_site", "out_lat", "out_lng", "out_distance_m",
                              "out_flagged"])
    timeline_event_add(ticket=ticket, kind=EventKind.CHANGED, actor=actor, is_public=True,
                       code="ticket.site_checkout", params={"name": _actor_label(actor), "time": _time_text(now),
                                                            "minutes": visit.minutes_on_site})
    return visit


def photo_max_mb() -> int:
    return int(getattr(settings, "FIELDSERVICE_PHOTO_MAX_MB", 10))


@transaction.atomic
def site_photo_add(*, ticket, actor, upload, phase, node="", is_public=True):
    """A photo before or after the work, on the ticket's timeline (with the workflow node it was
    taken at) and, if public, on the customer's tracking page."""
    if phase not in PHASES:
        raise ValidationError({"phase": _("Choose before or after.")})
    if upload is None:
        raise ValidationError({"photo": _("Choose a photo.")})
    _check_holder(ticket, actor)
    schema.upload_check(upload, kind="image", max_size_mb=photo_max_mb())
    event = timeline_event_add(ticket=ticket, kind=EventKind.ATTACHMENT, actor=actor, is_public=is_public,
                               code="ticket.site_photo", params={"phase": phase, "node": (node or "")[:60]})
    return attachment_store(ticket=ticket, upload=upload, is_public=is_public, actor=actor, event=event,
                            field_key=f"site_{phase}")


SIGNATURE_MAX_BYTES = 1024 * 1024


@transaction.atomic
def site_signature_add(*, ticket, actor, upload, signer_name="", rating=None, lat=None, lng=None, now=None):
    """The customer signs on the engineer's phone to confirm the work: a PNG from the signature
    pad, kept with the time and place on the engineer's latest visit (one signature per visit)."""
    _check_holder(ticket, actor, open_only=False)
    position = _position(lat, lng)
    signer_name = (signer_name or "").strip()
    if len(signer_name) > 40:
        raise ValidationError({"signer_name": _("Ensure this value has at most %(n)d characters.") % {"n": 40}})
    if rating not in (None, ""):
        try:
            rating = int(rating)
        except (TypeError, ValueError):
            rating = 0
        if not 1 <= rating <= 5:
            raise ValidationError({"rating": _("Give a rating from 1 to 5.")})
    else:
        rating = None
    if upload is None or not upload.size:
        raise ValidationError({"signature": _("The signature is empty: ask the customer to sign.")})
    if upload.size > SIGNATURE_MAX_BYTES:
        raise ValidationError({"signature": _("The signature image is too large.")})
    upload.seek(0)
    data = upload.read()
    try:
        signed = png_has_ink(data)
    except ValueError:
        raise ValidationError({"signature": _("The signature is not a PNG image.")}) from None
    if not signed:
        raise ValidationError({"signature": _("The signature is empty: ask the customer to sign.")})
    visit = (SiteVisit.objects.select_for_update().filter(ticket=ticket, engineer=actor)
             .order_by("-checked_in_at", "-id").first())
    if visit is None:
        raise ValidationError({"__all__": _("Check in before the customer signs.")})
    if visit.signature_id or visit.signed_at:
        raise ValidationError({"__all__": _("The customer has already signed for this visit.")})
    now = now or timezone.now()
    label = signer_name or (ticket.customer.name if ticket.customer_id else "")
    event = timeline_event_add(ticket=ticket, kind=EventKind.ATTACHMENT, actor=actor, is_public=True,
                               code="ticket.site_signed", params={"signer": label})
    stored = SimpleUploadedFile(f"signature-{ticket.number}.png", data, content_type="image/png")
    visit.signature = attachment_store(ticket=ticket, upload=stored, is_public=False, actor=actor, event=event,
                                       field_key="site_signature")
    visit.signed_at, visit.signer_name, visit.rating = now, label[:40], rating
    if position is not None:
        visit.sign_lat, visit.sign_lng = position.lat, position.lng
    visit.save(update_fields=["signature", "signed_at", "signer_name", "rating", "sign_lat", "sign_lng"])
    return visit


@transaction.atomic
def site_checkin_review(*, visit, actor):
    """A manager has looked at a flagged check-in (and its reason): it leaves the 待处理 list."""
    visit = SiteVisit.objects.select_for_update().select_related("ticket", "engineer").get(pk=visit.pk)
    if not (visit.flagged or visit.out_flagged):
        raise ValidationError({"__all__": _("This check-in is not flagged.")})
    if visit.reviewed_at is not None:
        raise ValidationError({"__all__": _("This check-in has already been reviewed.")})
    visit.reviewed_by, visit.reviewed_at = actor, timezone.now()
    visit.save(update_fields=["reviewed_by", "reviewed_at"])
    timeline_event_add(ticket=visit.ticket, kind=EventKind.CHANGED, actor=actor,
                       code="ticket.site_checkin_reviewed",
                       params={"name": _actor_label(actor), "engineer": _actor_label(visit.engineer)})
    return visit
