"""The CSAT follow-up and the per-ticket quality score (质检分): what a low rating opened, and the
score each ticket carries for the weekly quality report. Imported by dashboards.models so Django
registers them; kept apart so the roll-ups' module stays about roll-ups."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantOwned
from tickets.models import SatisfactionRating, Ticket


class RatingFollowUp(TenantOwned):
    """The revisit ticket (回访工单) a 1–2★ rating opened for the rated ticket. Written by
    dashboards.csat.csat_followup_open in the rating's transaction, after the follow-up was
    filed through tickets' intake.

    Must hold: one follow-up per rating (and so per rated ticket: a ticket is rated once)."""

    rating = models.OneToOneField(SatisfactionRating, on_delete=models.CASCADE, related_name="followup")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+", verbose_name=_("rated ticket"))
    followup = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("revisit ticket"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("rating follow-up")
        verbose_name_plural = _("rating follow-ups")
        constraints = [models.UniqueConstraint(fields=["ticket"], name="ratingfollowup_once_per_ticket")]
        indexes = [models.Index(fields=["tenant", "followup"], name="ratingfollowup_followup")]

    def __str__(self):
        return f"{self.ticket_id} → {self.followup_id}"


class TicketQualityScore(TenantOwned):
    """A ticket's quality score (质检分, 0–100) and its breakdown: the keyword findings, the
    handling time against its SLA (or the default target), the customer's rating. Recomputed by
    dashboards.quality.quality_score_refresh when a staff member replies publicly, the ticket is
    resolved or closed, or it is rated. `team`, `region`, `store` and `assignee` are the ticket's
    as they were at the last computation (the team: the handler's first team), `finished_at`
    when it was resolved or closed — the week the weekly report counts it in.

    Must hold: one row per ticket; a score from 0 to 100."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField(_("quality score"))
    parts = models.JSONField(_("breakdown"), default=list)
    findings = models.PositiveSmallIntegerField(_("findings"), default=0)  # keyword findings, summed by the report
    team = models.ForeignKey("scrm.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    region = models.ForeignKey("scrm.Region", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    store = models.ForeignKey("scrm.Store", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("quality score")
        verbose_name_plural = _("quality scores")
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=100), name="qualityscore_0_to_100"),
        ]
        indexes = [
            # The weekly report: one team's (or all visible) finished tickets of a week, lowest first.
            models.Index(fields=["tenant", "finished_at", "score"], name="qualityscore_week"),
            models.Index(fields=["tenant", "team", "finished_at"], name="qualityscore_team_week"),
        ]

    def __str__(self):
        return f"{self.ticket_id}: {self.score}"
