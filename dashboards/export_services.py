"""Writes of the ticket list's background export: asking for one (checked, one transaction,
the job enqueued on commit), running it (keyset batches streamed into a CSV or XLSX file under
VAR_DIR/exports, progress after every batch) and the cleanup of expired files."""

from __future__ import annotations

import csv
import datetime
import logging
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from scrm.selectors import membership_current

from . import export_selectors as reads
from .export_models import ExportFormat, ExportJob, ExportState
from .resources import RowCells

log = logging.getLogger(__name__)

JOB_MAX_ROWS = 1_000_000  # an Excel sheet holds 1,048,576 rows; nobody reads more in one file
ACTIVE_JOBS_MAX = 3  # queued or running exports per person
BATCH_SIZE = 2000  # rows per query and per progress update
KEEP_FOR = datetime.timedelta(hours=24)  # how long a finished export can be downloaded
STALE_AFTER = datetime.timedelta(hours=3)  # a job "running" this long lost its worker


def sync_max_rows() -> int:
    """Up to this many rows the list's export answers in the request (EXPORT_SYNC_MAX_ROWS)."""
    return int(getattr(settings, "EXPORT_SYNC_MAX_ROWS", 5000))


def export_root() -> Path:
    """Where export files live: under VAR_DIR, not MEDIA_ROOT, so no URL serves them but the
    download view, which checks who asks."""
    return Path(settings.VAR_DIR) / "exports"


def export_path(job: ExportJob) -> Path:
    return export_root() / job.file_name


def export_job_create(*, user: Any, tenant: Any, fmt: str, params: dict[str, str], language: str = "") -> ExportJob:
    """Ask for a background export of the ticket list with the list's filter `params`: checks
    the format, the filter (another tenant's id is an error), the size (more than the request
    exports, at most JOB_MAX_ROWS) and the asker's running exports; writes the job and enqueues
    its run after commit. Raises ValidationError with the reason, writing nothing."""
    if fmt not in ExportFormat.values:
        raise ValidationError(_("Choose CSV or Excel."))
    filters = reads.export_filters_check(params)
    if reads.export_jobs_active_count(user=user) >= ACTIVE_JOBS_MAX:
        raise ValidationError(_("You already have %(n)d exports under way: wait for one to finish.")
                              % {"n": ACTIVE_JOBS_MAX})
    n = reads.export_count(reads.export_tickets(user=user, filters=filters), JOB_MAX_ROWS)
    if n > JOB_MAX_ROWS:
        raise ValidationError(_("More than %(n)s tickets match: narrow the filters to export them.")
                              % {"n": f"{JOB_MAX_ROWS:,}"})
    if n == 0:
        raise ValidationError(_("No tickets match these filters."))
    from .export_tasks import export_job_run_task  # the task module imports this one

    with transaction.atomic():
        job = ExportJob.objects.create(tenant=tenant, requested_by=user, filters=filters, format=fmt,
                                       language=language or translation.get_language() or "", rows_total=n)
        export_job_run_task.delay_on_commit(tenant_id=tenant.pk, job_id=job.pk)
    return job


class _CsvFile:
    """CSV in UTF-8 with a BOM (Excel then reads the Chinese text), one row at a time."""

    def __init__(self, path: Path):
        self.file = path.open("w", encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.file)

    def write(self, rows: list[list[str]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        self.file.close()


class _XlsxFile:
    """openpyxl's write-only workbook: rows go to a temporary file as they come, so memory stays
    flat however many rows; text cells lose the control characters a sheet cannot hold."""

    def __init__(self, path: Path):
        from openpyxl import Workbook
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self.path, self.illegal = path, ILLEGAL_CHARACTERS_RE
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(title=_("Tickets")[:31])

    def write(self, rows: list[list[str]]) -> None:
        sub = self.illegal.sub
        for row in rows:
            self.sheet.append([sub("", cell) for cell in row])

    def close(self) -> None:
        self.book.save(self.path)


WRITERS: dict[str, type[_CsvFile] | type[_XlsxFile]] = {ExportFormat.CSV: _CsvFile, ExportFormat.XLSX: _XlsxFile}


def _job_update(job: ExportJob, **values: Any) -> None:
    """One UPDATE of the job's row, committed at once (the job runs outside a transaction) so
    the progress page sees it; the instance follows."""
    ExportJob.objects.filter(pk=job.pk).update(**values)
    for key, value in values.items():
        setattr(job, key, value)


def export_job_run(*, job_id: int, batch_size: int = BATCH_SIZE) -> ExportJob | None:
    """Run a queued export: claim it (a second delivery of the task finds it taken and does
    nothing), read the tickets the asker may see now with the stored filter, newest first in
    keyset batches, write each batch to the file and the progress to the row (2 queries per
    batch). Finished: state done and a download until KEEP_FOR from now. Any error: state failed
    with a message for the asker, the partial file removed."""
    now = timezone.now()
    if not ExportJob.objects.filter(pk=job_id, state=ExportState.QUEUED).update(state=ExportState.RUNNING,
                                                                               started_at=now):
        return None
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    job.file_name = f"{job.tenant_id}/{job.pk}-{secrets.token_hex(8)}.{job.format}"
    path = export_path(job)
    try:
        with translation.override(job.language or settings.LANGUAGE_CODE):
            user = job.requested_by
            if not user.is_active or (membership_current(user=user) is None and not user.is_superuser):
                raise ValidationError(_("You no longer have access to this tenant's tickets."))
            qs = reads.export_tickets(user=user, filters=job.filters, as_of=job.created_at)
            top = reads.export_top_id(qs)
            total = reads.export_count(qs.filter(id__lte=top), JOB_MAX_ROWS) if top is not None else 0
            _job_update(job, rows_total=total)
            path.parent.mkdir(parents=True, exist_ok=True)
            cells = RowCells()
            out = WRITERS[job.format](path)
            try:
                out.write([cells.headers])
                done = 0
                for batch in reads.export_batches(qs, top=top, size=batch_size) if top is not None else ():
                    out.write([cells(row) for row in batch])
                    done += len(batch)
                    _job_update(job, rows_done=done)
            finally:
                out.close()
        finished = timezone.now()
        # Tickets that left the filter meanwhile were not written: the total is what the file holds.
        _job_update(job, state=ExportState.DONE, rows_done=done, rows_total=done, file_name=job.file_name,
                    finished_at=finished, expires_at=finished + KEEP_FOR)
    except Exception as exc:
        if not isinstance(exc, ValidationError):
            log.exception("export %s failed", job.pk)
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else _(
            "The export failed. Try again, or narrow the filters.")
        if path.is_file():
            path.unlink()
        _job_update(job, state=ExportState.FAILED, error=message[:300], file_name="", finished_at=timezone.now())
    return job


def exports_clean(*, now: datetime.datetime | None = None) -> int:
    """The periodic cleanup in the tenant in scope: delete the files of expired exports (the row
    stays, saying it expired) and fail jobs whose worker died mid-way. Returns files deleted."""
    now = now or timezone.now()
    deleted = 0
    for job in reads.export_jobs_expired(now=now):
        export_path(job).unlink(missing_ok=True)
        # Conditional: a second cleanup running at once deletes nothing twice.
        deleted += ExportJob.objects.filter(pk=job.pk, file_name=job.file_name).update(file_name="")
    ExportJob.objects.filter(state__in=(ExportState.QUEUED, ExportState.RUNNING),
                             created_at__lt=now - STALE_AFTER).update(
        state=ExportState.FAILED, error=_("The export stopped before it finished. Start it again."),
        finished_at=now)
    return deleted
