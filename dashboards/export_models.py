"""The background export of the ticket list: one ExportJob per request of a large export, its
progress while a Celery worker writes the file, and the file's expiry."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.models import TenantOwned


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel"


class ExportState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ExportJob(TenantOwned):
    """One export of the ticket list that was too large to send in the request: who asked, the
    list filter they asked with (already checked, as the list's query keys), the format, where
    the worker is (rows done of rows total) and the file it wrote under VAR_DIR/exports.

    Must hold: only the person who asked downloads it, in its tenant, until `expires_at`; the
    periodic cleanup deletes the file after that (`file_name` then empty). `filters` are read
    again by the worker as the asker's visibility at run time, never widened."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                     verbose_name=_("requested by"))
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    format = models.CharField(_("format"), max_length=4, choices=ExportFormat.choices)
    language = models.CharField(max_length=12, blank=True)  # the asker's, for headers and labels
    state = models.CharField(_("state"), max_length=8, choices=ExportState.choices, default=ExportState.QUEUED)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    rows_total = models.PositiveIntegerField(_("rows total"), default=0)
    file_name = models.CharField(max_length=200, blank=True)  # relative to VAR_DIR/exports
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(format__in=ExportFormat.values), name="exportjob_format_valid"),
            models.CheckConstraint(condition=Q(state__in=ExportState.values), name="exportjob_state_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "requested_by", "-created_at"], name="exportjob_mine"),
            models.Index(fields=["tenant", "expires_at"], name="exportjob_expiry"),
        ]

    def __str__(self):
        return f"{self.format} {self.state} {self.rows_done}/{self.rows_total}"

    @property
    def is_active(self):
        return self.state in (ExportState.QUEUED, ExportState.RUNNING)

    @property
    def percent(self):
        if self.state == ExportState.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, int(self.rows_done * 100 / self.rows_total))
