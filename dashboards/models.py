"""质检 (quality checks): per-tenant keyword rules over what staff wrote to customers, and the
flags a scan leaves on tickets for a manager to review."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantOwned
from tickets.models import Ticket, TimelineEvent


class QualityRuleKind(models.TextChoices):
    FLAG = "flag", _("Phrases to flag")
    FORBIDDEN = "forbidden", _("Forbidden words")
    REQUIRED = "required", _("Required phrases")


class QualityRule(TenantOwned):
    """A keyword rule of the quality check. `phrases` is a list of plain phrases (matched
    literally, any one of them, on RE2 — so no rule can make a scan slow): a public staff comment
    containing one is flagged (flag, forbidden); a finished ticket whose public staff comments
    contain none is flagged (required, e.g. the closing 您好 / 感谢).

    Must hold: a name unique in the tenant; 1–30 phrases of 1–50 characters (the service checks)."""

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=QualityRuleKind.choices)
    phrases = models.JSONField(_("phrases"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quality rule")
        verbose_name_plural = _("quality rules")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="qualityrule_unique_name"),
            models.CheckConstraint(condition=Q(kind__in=QualityRuleKind.values), name="qualityrule_kind_valid"),
        ]

    def __str__(self):
        return self.name


class QualityFlag(TenantOwned):
    """One finding of the quality check: a ticket to review, the rule that fired, the comment
    (none for a missing required phrase) and the words found. Written once per rule and comment
    (or rule and ticket for required phrases), so scanning the same period twice adds nothing;
    `reviewed_by` / `reviewed_at` record that a manager looked at it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(QualityRule, on_delete=models.CASCADE, related_name="flags")
    event = models.ForeignKey(TimelineEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    excerpt = models.CharField(_("excerpt"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("quality flag")
        verbose_name_plural = _("quality flags")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "event"], condition=Q(event__isnull=False),
                                    name="qualityflag_once_per_event"),
            models.UniqueConstraint(fields=["rule", "ticket"], condition=Q(event__isnull=True),
                                    name="qualityflag_once_per_ticket"),
        ]
        indexes = [models.Index(fields=["tenant", "reviewed_at", "-created_at"], name="qualityflag_queue")]

    def __str__(self):
        return f"{self.ticket_id}: {self.rule_id}"
