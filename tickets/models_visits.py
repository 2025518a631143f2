"""Site visits (现场签到/签退): the proof that an engineer was at the customer's site, and for
how long. Lives in tickets, below the workflow, so settlement can bill on-site time from it
(`tickets.selectors_visits.onsite_minutes`). Imported by tickets/models.py."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantOwned


class Verdict(models.TextChoices):
    """What the check-in's position says about being on site."""

    WITHIN = "within", _("Within the radius")
    OUTSIDE = "outside", _("Outside the radius")
    NO_LOCATION = "no_location", _("No location")
    NO_SITE = "no_site", _("Site has no coordinates")


FLAGGED_VERDICTS = (Verdict.OUTSIDE, Verdict.NO_LOCATION)


def _coordinate(name):
    return models.DecimalField(name, max_digits=9, decimal_places=6, null=True, blank=True)


class SiteVisit(TenantOwned):
    """One engineer's stay at a ticket's site: check-in (position, distance to the site, verdict)
    then check-out (position, minutes on site), the customer's signature, and the manager's
    review of a flagged check-in. Must hold: at most one open visit per engineer and ticket; a
    flagged check-in (outside the radius, or no position) carries the engineer's reason;
    coordinates in range; check-out after check-in, with its minutes, and only then."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="site_visits")
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("engineer"))
    # The site as it was known at check-in (the address field's coordinates, else the store's).
    site_lat = _coordinate(_("site latitude"))
    site_lng = _coordinate(_("site longitude"))
    site_source = models.CharField(max_length=10, blank=True)
    radius_m = models.PositiveIntegerField(_("radius (m)"))
    checked_in_at = models.DateTimeField(_("checked in at"))
    in_lat = _coordinate(_("latitude"))
    in_lng = _coordinate(_("longitude"))
    in_accuracy_m = models.PositiveIntegerField(null=True, blank=True)
    in_distance_m = models.PositiveIntegerField(_("distance (m)"), null=True, blank=True)
    verdict = models.CharField(_("verdict"), max_length=12, choices=Verdict.choices)
    flagged = models.BooleanField(_("flagged"), default=False)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    in_photo = models.ForeignKey("tickets.Attachment", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    checked_out_at = models.DateTimeField(_("checked out at"), null=True, blank=True)
    out_lat = _coordinate(_("latitude"))
    out_lng = _coordinate(_("longitude"))
    out_distance_m = models.PositiveIntegerField(null=True, blank=True)
    out_flagged = models.BooleanField(default=False)
    minutes_on_site = models.PositiveIntegerField(_("minutes on site"), null=True, blank=True)
    signature = models.ForeignKey("tickets.Attachment", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    signer_name = models.CharField(_("signed by"), max_length=40, blank=True)
    sign_lat = _coordinate(_("latitude"))
    sign_lng = _coordinate(_("longitude"))
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("site visit")
        verbose_name_plural = _("site visits")
        ordering = ["checked_in_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket", "engineer"], condition=Q(checked_out_at__isnull=True),
                                    name="sitevisit_one_open"),
            models.CheckConstraint(condition=Q(verdict__in=Verdict.values), name="sitevisit_verdict_valid"),
            models.CheckConstraint(condition=Q(flagged=False) | ~Q(reason=""), name="sitevisit_flag_has_reason"),
            models.CheckConstraint(
                condition=Q(checked_out_at__isnull=True, minutes_on_site__isnull=True)
                | Q(checked_out_at__gte=models.F("checked_in_at"), minutes_on_site__isnull=False),
                name="sitevisit_out_after_in"),
            models.CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                                   name="sitevisit_rating_range"),
            *[models.CheckConstraint(
                condition=Q(**{f"{p}_lat__isnull": True}) | Q(**{f"{p}_lat__gte": -90, f"{p}_lat__lte": 90}),
                name=f"sitevisit_{p}_lat_range") for p in ("site", "in", "out", "sign")],
            *[models.CheckConstraint(
                condition=Q(**{f"{p}_lng__isnull": True}) | Q(**{f"{p}_lng__gte": -180, f"{p}_lng__lte": 180}),
                name=f"sitevisit_{p}_lng_range") for p in ("site", "in", "out", "sign")],
        ]
        indexes = [
            models.Index(fields=["tenant", "ticket", "checked_in_at"], name="sitevisit_ticket"),
            # The manager's day (all check-ins, or the flagged ones) and an engineer's day.
            models.Index(fields=["tenant", "checked_in_at"], name="sitevisit_day"),
            models.Index(fields=["tenant", "engineer", "checked_in_at"], name="sitevisit_engineer_day"),
        ]

    def __str__(self):
        return f"{self.ticket_id}@{self.checked_in_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self):
        return self.checked_out_at is None
