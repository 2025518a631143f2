"""Dashboard pages: the 工作台 by role (the first page after sign-in), the 实时进度看板 with its
drag-to-transfer, the manager dashboard with ECharts charts, and each chart's CSV.
Thin: dashboards.selectors reads, workflow.lifecycle transfers, charts.py shapes each chart."""

import csv
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from scrm.models import Role
from scrm.selectors import membership_current
from scrm.views import ObjectView, StaffView
from tickets.models import Priority
from workflow.lifecycle import ticket_assign

from . import cache as dash_cache
from . import charts, selectors, services
from .forms import GROUPS, DashboardFilterForm, FilterForm, QualityRuleForm, TransferForm

MANAGER_ROLES = (Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE)


class WorkbenchView(StaffView):
    """工作台: managers get the day's figures (each a link to the filtered ticket list), agents
    their queue and today's intake, engineers today's tasks."""

    def get(self, request):
        membership = membership_current(user=request.user)
        role = membership.role if membership is not None else ("admin" if request.user.is_superuser else "")
        context = {"role": role, "now": timezone.now()}
        if role in MANAGER_ROLES or request.user.is_superuser:
            def draw():
                figures = selectors.manager_figures(user=request.user)
                figures["avg_resolution_text"] = charts.duration_text(figures["avg_resolution"])
                figures["avg_first_response_text"] = charts.duration_text(figures["avg_first_response"])
                return render_to_string("dashboards/_figures.html", {"figures": figures})

            # The figures row as drawn, shared like the figures themselves (dashboards.cache).
            context["figures_row"] = mark_safe(dash_cache.cached(  # noqa: S308  (our own template's output)
                "workbench-figures", user=request.user, parts=(), depends=(dash_cache.LIVE, dash_cache.ROLLUP),
                ttl=dash_cache.FIGURES_TTL, compute=draw))
            context["queue"] = _queue(request.user, limit=5)
        elif role == Role.ENGINEER:
            context["today"] = selectors.engineer_today(user=request.user)
        else:
            context["queue"] = _queue(request.user)
        return render(request, "dashboards/workbench.html", context)


def _queue(user, limit=10):
    """The user's own open tasks, and today's intake card as drawn — shared by their scope for
    as long as the figures (dashboards.cache)."""
    def draw():
        intake = selectors.today_intake(user=user, limit=limit)
        return render_to_string("dashboards/_intake.html", {"intake": intake}), intake["intake_total"]

    html, total = dash_cache.cached("workbench-intake", user=user, parts=(limit,), depends=(dash_cache.LIVE,),
                                    ttl=dash_cache.FIGURES_TTL, compute=draw)
    return {**selectors.agent_tasks(user=user, limit=limit), "intake_total": total,
            "intake_card": mark_safe(html)}  # noqa: S308  (our own template's output)


def _filters_drawn(request, name, make_form, *, unknown_group=False, **shown):
    """The page's filter form as drawn (dashboards/_filters.html with `shown`), its filters and
    the status to answer with (400 when a filter is refused: the form says which), shared through
    dashboards.cache by everyone of the same scope asking with the same query: building the
    form's choices and drawing its selects cost more than the rest of the page."""
    def draw():
        form = make_form()
        if form.is_bound and not form.is_valid():
            filters, status = selectors.TicketFilters(), 400
        else:
            filters, status = form.filters() if form.is_bound else selectors.TicketFilters(), 200
        if unknown_group:
            form.add_error(None, _("Unknown grouping."))
            status = 400
        return render_to_string("dashboards/_filters.html", {"form": form, **shown}), filters, status

    html, filters, status = dash_cache.cached(
        name, user=request.user, parts=(sorted(request.GET.lists()), unknown_group, sorted(shown.items())),
        depends=(dash_cache.CHOICES,), ttl=dash_cache.CHOICES_TTL, compute=draw)
    return mark_safe(html), filters, status  # noqa: S308  (our own template's output)


class BoardView(StaffView):
    """实时进度看板: open tickets as cards in columns; htmx re-reads the columns every 15 s."""

    permission = "tickets.view_ticket"

    def get(self, request):
        group = request.GET.get("group", "status")
        unknown_group = group not in dict(GROUPS)
        if unknown_group:
            group = "status"
        filter_form, filters, status = _filters_drawn(
            request, "board-filters", lambda: FilterForm(request.GET or None), unknown_group=unknown_group, group=group)
        # Read only when the columns are drawn (not when they come from the cache below).
        data = SimpleLazyObject(lambda: selectors.board(user=request.user, filters=filters, group=group))
        can_transfer = group == "handler" and request.user.has_perm("tickets.change_ticket")
        query = request.GET.copy()
        # The ticket list's own filters, for each column's "see the list" link.
        list_query = urlencode({key: value for key, value in (
            ("store", filters.store_id), ("template", filters.template_id), ("priority", filters.priority)) if value})
        context = {"filter_form": filter_form, "board": data, "group": group, "groups": GROUPS,
                   "can_transfer": can_transfer, "query": query.urlencode(), "priorities": dict(Priority.choices),
                   "updated": timezone.now(), "list_query": list_query, "cap": selectors.BOARD_COUNT_CAP}
        # The columns as drawn, shared for a few seconds by everyone of the same scope and filters
        # (dashboards.cache): drawing hundreds of cards costs more than reading them.
        columns = mark_safe(dash_cache.cached(  # noqa: S308  (our own template's output)
            "board-columns", user=request.user, parts=(filters, group, can_transfer, list_query),
            depends=(dash_cache.LIVE,), ttl=dash_cache.BOARD_TTL,
            compute=lambda: render_to_string("dashboards/_board_columns.html", context)))
        if request.headers.get("HX-Request"):
            return HttpResponse(columns, status=status)
        return render(request, "dashboards/board.html", {**context, "columns": columns}, status=status)


class BoardTransferView(StaffView):
    """A card dropped on another handler's column (POST): transfer the ticket — and its open
    task — through the lifecycle (workflow.lifecycle.ticket_assign), which writes the timeline."""

    permission = "tickets.change_ticket"
    http_method_names = ["post"]

    def post(self, request):
        form = TransferForm(request.POST)
        if not form.is_valid():
            return self.refuse(request, " ".join(e for errors in form.errors.values() for e in errors))
        ticket = selectors.board_ticket(user=request.user, pk=form.cleaned_data["ticket"])
        if ticket is None:
            raise Http404
        person = form.people[form.cleaned_data["handler"]]
        try:
            ticket_assign(ticket=ticket, assignee=person, actor=request.user)
        except ValidationError as exc:
            return self.refuse(request, " ".join(exc.messages))
        text = _("%(number)s transferred to %(name)s.") % {"number": ticket.number,
                                                           "name": person.first_name or person.username}
        if request.headers.get("HX-Request"):
            return HttpResponse(text, status=200)
        messages.success(request, text)
        return redirect(f"{request.path.rsplit('transfer/', 1)[0]}?group=handler")

    def refuse(self, request, text):
        if request.headers.get("HX-Request"):
            return HttpResponse(text, status=400)
        messages.error(request, text)
        return redirect(f"{request.path.rsplit('transfer/', 1)[0]}?group=handler")


def _dashboard_filters(request):
    """The dashboard's filter form for this user (their regions and stores only), its filters and
    the status to answer with (400 when a filter is refused: the page says which)."""
    form = DashboardFilterForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return form, selectors.TicketFilters(), 400
    return form, form.filters() if form.is_bound else selectors.TicketFilters(), 200


class DashboardView(StaffView):
    """The manager dashboard: every chart (charts.dashboard_charts — intake per day and channel,
    the backlog trend, the SLA breach rate, response and resolution time p50/p90 by region /
    store / person, the node × duration and weekday × hour heatmaps, the rankings) drawn by
    static/js/dashboard-charts.js with ECharts from json_script data, each with its table (the
    no-script fallback) and CSV; then the satisfaction results and repeat requests."""

    permission = "tickets.view_ticket"

    def get(self, request):
        user = request.user
        filter_form, filters, status = _filters_drawn(
            request, "dashboard-filters", lambda: DashboardFilterForm(request.GET or None, user=user), show_days=1)
        query = request.GET.urlencode()

        def draw():
            built, intake = charts.dashboard_charts(user=user, filters=filters)
            html = render_to_string("dashboards/_dashboard_body.html", {
                "charts": built, "query": query, "csat": selectors.csat_summary(user=user, filters=filters),
                "repeats": selectors.repeat_requests(user=user, filters=filters)})
            return html, sum(sum(v) for v in intake.get("series", {}).values()), intake.get("as_of")

        # The cards as drawn (the charts' data and tables, repeat requests, satisfaction), shared
        # by everyone of the same scope and filters until the next roll-up or rating
        # (dashboards.cache): drawing twelve charts' tables costs more than reading the roll-ups.
        html, intake_total, as_of = dash_cache.cached(
            "dashboard-body", user=user, parts=(filters, query), depends=(dash_cache.ROLLUP, dash_cache.RATINGS),
            ttl=dash_cache.ROLLUP_TTL, compute=draw)
        context = {
            "filter_form": filter_form, "filters": filters, "query": query,
            "body": mark_safe(html),  # noqa: S308  (our own template's output)
            "intake_total": intake_total, "as_of": as_of,
            # What the cards show, read again only when something reads them (tests do).
            "charts": SimpleLazyObject(lambda: charts.dashboard_charts(user=user, filters=filters)[0]),
            "csat": SimpleLazyObject(lambda: selectors.csat_summary(user=user, filters=filters)),
            "repeats": SimpleLazyObject(lambda: selectors.repeat_requests(user=user, filters=filters)),
        }
        return render(request, "dashboards/dashboard.html", context, status=status)


class DashboardExportView(StaffView):
    """`dashboard/export/?table=<chart>`: one chart's table with the page's filters (and the
    user's visibility), as CSV — the same columns and cells as the table beside the chart —
    in UTF-8 with a BOM so Excel opens the Chinese text. `table=csat`: ratings by store."""

    permission = "tickets.view_ticket"

    def get(self, request):
        table = request.GET.get("table") or "intake"
        if table not in (*charts.CHART_KEYS, "csat"):
            return HttpResponse(_("Unknown table."), status=400, content_type="text/plain; charset=utf-8")
        form, filters, status = _dashboard_filters(request)
        if status != 200:
            problems = " ".join(_("%(field)s: %(error)s") % {"field": form.fields[name].label, "error": e}
                                if name in form.fields else str(e)
                                for name, errors in form.errors.items() for e in errors)
            return HttpResponse(_("Invalid filters: %(problems)s") % {"problems": problems}, status=400,
                                content_type="text/plain; charset=utf-8")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{table}.csv"'
        response.write("\ufeff")
        writer = csv.writer(response)
        if table == "csat":
            data = selectors.csat_summary(user=request.user, filters=filters)
            writer.writerow([_("Store"), _("Ratings"), _("Average score")])
            for row in data["by_store"]:
                writer.writerow([_csv_text(row["store__name"] or "—"), row["n"], f"{row['avg']:.2f}"])
            return response
        (chart,), _intake = charts.dashboard_charts(user=request.user, filters=filters, only=(table,))
        writer.writerow(chart.columns)
        for row in chart.rows:
            writer.writerow(["" if cell is None else _csv_text(cell) if isinstance(cell, str) else cell
                             for cell in row])
        return response


def _csv_text(value):
    """Neutralise spreadsheet formulas in text a user typed (=, +, -, @ at the start)."""
    text = str(value or "")
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


class QualityView(StaffView):
    """质检: the flags to review and the rules (managers add rules and run a scan of the last
    7 days here; the scan also runs as the `dashboards.quality_scan_task` Celery task)."""

    permission = "tickets.change_ticket"

    def get(self, request, form=None, status=200):
        return render(request, "dashboards/quality.html", {
            "flags": selectors.quality_flags(user=request.user), "rules": selectors.quality_rules(),
            "form": form or QualityRuleForm(), "can_manage": self.can_manage(request),
        }, status=status)

    def can_manage(self, request):
        return request.user.has_perm("tickets.change_classificationrule")

    def post(self, request):
        if not self.can_manage(request):
            raise PermissionDenied
        if request.POST.get("action") == "scan":
            n = services.quality_scan(since=timezone.now() - timezone.timedelta(days=7))
            messages.success(request, _("Quality check done: %(n)d new findings.") % {"n": n})
            return redirect("quality")
        form = QualityRuleForm(request.POST)
        if form.is_valid():
            try:
                services.quality_rule_save(tenant=request.tenant, **form.cleaned_data)
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    form.add_error(key if key in form.fields else None, errors)
            else:
                messages.success(request, _("Rule saved."))
                return redirect("quality")
        return self.get(request, form=form, status=400)


class QualityReviewView(StaffView, ObjectView):
    """Mark a flag as reviewed (POST); another tenant's or an invisible flag is a 404 for every verb."""

    permission = "tickets.change_ticket"
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.quality_flag_get(user=self.request.user, pk=pk)

    def post(self, request, pk):
        services.quality_flag_review(flag=self.object, actor=request.user)
        return redirect("quality")
