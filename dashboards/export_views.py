"""The ticket list's export pages: the list's export button (a file at once up to
EXPORT_SYNC_MAX_ROWS rows, else an offer to run it in the background), starting a background export,
its page with a progress bar htmx polls, the person's recent exports, and the download that
expires. Thin: export_selectors reads, export_services writes."""

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from scrm.views import StaffView

from . import export_selectors as reads
from . import export_services as writes
from .export_models import ExportFormat, ExportState
from .resources import TicketExportResource

PLAIN = "text/plain; charset=utf-8"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class TicketExportView(StaffView):
    """`tickets/export/?format=csv|xlsx&<the list's filters>`: up to EXPORT_SYNC_MAX_ROWS visible
    tickets (newest first) as a file in this response; more, and the page offers to export them
    in the background (a POST to `export-start`). A malformed filter or another tenant's id is a
    400 with the reason, as an unknown format is."""

    permission = "tickets.view_ticket"

    def get(self, request):
        fmt = request.GET.get("format", "csv")
        if fmt not in ExportFormat.values:
            return HttpResponse(_("Choose CSV or Excel."), status=400, content_type=PLAIN)
        try:
            filters = reads.export_filters_check(request.GET)
        except ValidationError as exc:
            return HttpResponse(" ".join(exc.messages), status=400, content_type=PLAIN)
        qs = reads.export_tickets(user=request.user, filters=filters)
        rows = list(qs.select_related(None).select_related("template", "store", "customer", "assignee")
                    .only("id", "number", "title", "status", "priority", "source", "created_at", "resolved_at",
                          "closed_at", "tenant_id", "template__name", "store__name", "customer__name",
                          "assignee__first_name", "assignee__username")[:writes.sync_max_rows() + 1])
        if len(rows) > writes.sync_max_rows():
            count = reads.export_count(qs, writes.JOB_MAX_ROWS)
            return render(request, "dashboards/export_offer.html", {
                "format": fmt, "format_label": ExportFormat(fmt).label, "count": count,
                "too_many": count > writes.JOB_MAX_ROWS, "max_rows": writes.JOB_MAX_ROWS,
                "sync_max": writes.sync_max_rows(), "params": _filter_params(request.GET),
                "list_query": request.GET.urlencode(), "hours": int(writes.KEEP_FOR.total_seconds() // 3600)})
        dataset = TicketExportResource().export(queryset=rows)
        body = dataset.export("xlsx") if fmt == "xlsx" else "\ufeff" + dataset.export("csv")
        response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="tickets-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"'
        return response


def _filter_params(query):
    """The list's filter keys of a query string, for the offer's hidden fields."""
    keys = ("q", "status", "priority", "template", "store", "mine", "open", "created", "resolved")
    return [(key, query.get(key)) for key in keys if query.get(key)]


class ExportStartView(StaffView):
    """POST: start a background export with the format and the list's filter; then its page.
    A refusal (bad format or filter, too many, too many under way) shows the reason, no job."""

    permission = "tickets.view_ticket"
    http_method_names = ["post"]

    def post(self, request):
        params = {key: value for key, value in request.POST.items() if key != "csrfmiddlewaretoken"}
        try:
            job = writes.export_job_create(user=request.user, tenant=request.tenant,
                                           fmt=params.pop("format", ""), params=params, language=get_language())
        except ValidationError as exc:
            return render(request, "dashboards/export_refused.html", {"reasons": exc.messages}, status=400)
        return redirect("export-detail", pk=job.pk)


class ExportListView(StaffView):
    """The person's own recent exports (newest first), each with its state and link."""

    permission = "tickets.view_ticket"

    def get(self, request):
        return render(request, "dashboards/export_list.html", {"jobs": reads.export_jobs_mine(user=request.user),
                                                               "now": timezone.now()})


class _OwnJobView(StaffView):
    """Loads the person's own job; anyone else's — or another tenant's, or none — is a 404 with
    the same clear page, so a link says nothing about jobs that are not yours."""

    permission = "tickets.view_ticket"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and getattr(request, "tenant", None) is not None:
            self.job = reads.export_job_get(user=request.user, pk=kwargs["pk"])
            if self.job is None:
                return render(request, "dashboards/export_gone.html", {
                    "message": _("There is no such export of yours. An export can be opened only by the person "
                                 "who started it, in the company they started it in.")}, status=404)
        return super().dispatch(request, *args, **kwargs)


class ExportDetailView(_OwnJobView):
    """The job's page: its filter and format, a progress bar while it runs, then the link."""

    def get(self, request, pk):
        return render(request, "dashboards/export_detail.html", {
            "job": self.job, "now": timezone.now(), "filters": reads.export_filter_labels(self.job.filters)})


class ExportProgressView(_OwnJobView):
    """The progress fragment htmx polls every 2 s; once the job is done or failed the fragment
    comes back without its polling attributes, so the polling stops."""

    def get(self, request, pk):
        return render(request, "dashboards/_export_progress.html", {"job": self.job, "now": timezone.now()})


class ExportDownloadView(_OwnJobView):
    """The file, to the person who asked, until it expires (then a 404 saying so)."""

    def get(self, request, pk):
        job = self.job
        if job.state != ExportState.DONE:
            return render(request, "dashboards/export_gone.html", {
                "job": job, "message": _("This export has no file yet.")}, status=404)
        path = writes.export_path(job) if job.file_name else None
        if job.expires_at is None or job.expires_at <= timezone.now() or path is None or not path.exists():
            return render(request, "dashboards/export_gone.html", {"job": job, "message": _(
                "This download link expired at %(when)s. Export the list again to get a new one.")
                % {"when": timezone.localtime(job.expires_at).strftime("%Y-%m-%d %H:%M") if job.expires_at else "—"}},
                status=404)
        stamp = timezone.localtime(job.created_at).strftime("%Y%m%d-%H%M")
        return FileResponse(path.open("rb"), as_attachment=True, filename=f"tickets-{stamp}.{job.format}",
                            content_type=CONTENT_TYPES[job.format])

