"""Pages of the CSAT follow-up and quality score: the ticket page's panel (loaded with htmx:
score and breakdown, rating and revisit link, the repeat-complaint banner) and the weekly quality
report per team (week picker, team filter, CSV). Thin: dashboards.selectors_quality reads."""

import csv
import datetime
import re

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.models import Team
from scrm.views import StaffView

from . import selectors_quality
from .quality import week_label, week_start_of
from .views import _csv_text

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
REPORT_MAX_WEEKS = 520  # ten years back at most
CSV_TABLES = ("teams", "rules", "tickets")


class TicketQualityPanelView(StaffView):
    """`quality/ticket/<pk>/`: the ticket page's panel; 404 for a ticket the user may not see."""

    permission = "tickets.view_ticket"

    def get(self, request, pk):
        panel = selectors_quality.ticket_quality_panel(user=request.user, pk=pk)
        if panel is None:
            raise Http404
        return render(request, "dashboards/_ticket_quality.html", panel)


def week_parse(raw: str, today: datetime.date) -> tuple[datetime.date | None, str]:
    """The Monday of an ISO week written 2026-W49 (the week picker's value), or an error: not a
    week, in the future, or more than REPORT_MAX_WEEKS back."""
    match = WEEK_RE.match(raw or "")
    if match is None:
        return None, _("Choose a week (like 2026-W49).")
    try:
        monday = datetime.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        return None, _("Choose a week (like 2026-W49).")
    if monday > week_start_of(today):
        return None, _("That week has not started yet.")
    if (week_start_of(today) - monday).days > REPORT_MAX_WEEKS * 7:
        return None, _("Choose a week within the last ten years.")
    return monday, ""


class QualityReportView(StaffView):
    """`quality/report/?week=2026-W49&team=<id>[&format=csv&table=teams|rules|tickets]`: the
    week's quality per team, the findings by rule and the lowest-scoring tickets. The default
    week is the last finished one (what Monday's message reports). A bad week, team or table is
    a 400 with the reason."""

    permission = "tickets.view_ticket"

    def get(self, request):
        today = timezone.localdate()
        errors = []
        raw_week = request.GET.get("week", "")
        if raw_week:
            monday, error = week_parse(raw_week, today)
            if error:
                errors.append(error)
        else:
            monday = week_start_of(today) - datetime.timedelta(days=7)
        team_id = None
        raw_team = request.GET.get("team", "")
        if raw_team:
            if raw_team.isdigit() and Team.objects.filter(pk=int(raw_team)).exists():
                team_id = int(raw_team)
            else:
                errors.append(_("Select a valid choice. That choice is not one of the available choices."))
        fmt, table = request.GET.get("format", ""), request.GET.get("table", "teams")
        if fmt and (fmt != "csv" or table not in CSV_TABLES):
            errors.append(_("Unknown table."))
        if errors or monday is None:
            if fmt:
                return HttpResponse(" ".join(errors), status=400, content_type="text/plain; charset=utf-8")
            return render(request, "dashboards/quality_report.html", {
                "errors": errors, "week": raw_week, "teams": [], "team_id": None, "report": None}, status=400)
        report = selectors_quality.quality_report(user=request.user, monday=monday, team_id=team_id)
        if fmt:
            if table == "tickets":
                report["lowest"] = selectors_quality.report_tickets(user=request.user, monday=monday,
                                                                    team_id=team_id)
            return self.csv(report, table, week_label(monday))
        return render(request, "dashboards/quality_report.html", {
            "errors": [], "week": week_label(monday), "monday": monday,
            "sunday": monday + datetime.timedelta(days=6), "report": report, "team_id": team_id,
            "teams": selectors_quality.report_teams(user=request.user, monday=monday),
            "query": request.GET.urlencode(),
        })

    def csv(self, report, table, week):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="quality-{week}-{table}.csv"'
        response.write("\ufeff")  # a BOM, so Excel opens the Chinese text
        writer = csv.writer(response)
        if table == "teams":
            writer.writerow([_("Team"), _("Tickets"), _("Average score"), _("Lowest score"), _("Findings")])
            for row in report["teams"]:
                writer.writerow([_csv_text(row["team__name"] or _("No team")), row["n"], f"{row['avg']:.1f}",
                                 row["low"], row["findings"] or 0])
        elif table == "rules":
            writer.writerow([_("Rule"), _("Findings")])
            for row in report["rules"]:
                writer.writerow([_csv_text(row["rule__name"]), row["n"]])
        else:
            writer.writerow([_("Ticket"), _("Title"), _("Team"), _("Handler"), _("Quality score"), _("Breakdown")])
            for item in report["lowest"]:
                row = item["row"]
                handler = row.assignee.first_name or row.assignee.username if row.assignee else ""
                writer.writerow([row.ticket.number, _csv_text(row.ticket.title), _csv_text(row.team.name if row.team
                                 else ""), _csv_text(handler), row.score,
                                 "; ".join(f"{line['text']} ({line['points']})" for line in item["lines"])])
        return response
