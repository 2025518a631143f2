"""Field-service pages: 今日任务 and the visit page on the engineer's phone (check-in/out, photos,
the customer's signature, posted by static/js/fieldservice.js as JSON calls), and the manager's
day of check-ins. Thin: reads through selectors, writes through tickets' visit services."""

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.views import StaffView
from tickets import services
from tickets.forms import DepartForm
from tickets.models import SiteVisit
from tickets.selectors import visible_tickets
from tickets.selectors_visits import (
    site_photos,
    site_visit_latest,
    site_visit_open,
    site_visits,
    ticket_address_text,
    ticket_site_point,
)
from tickets.services.visits import photo_max_mb, ticket_held_by, visit_radius_m

from . import selectors


def _error(exc: ValidationError, status=400):
    """A refused write as JSON: the message for the person, the field it concerns and whether a
    reason would let it through (a check-in outside the radius or without a position)."""
    if hasattr(exc, "error_dict"):
        key, errors = next(iter(exc.error_dict.items()))
        needs_reason = any(e.code == "needs_reason" for e in errors)
        message = " ".join(m for e in errors for m in e.messages)
    else:
        key, needs_reason, message = "__all__", False, " ".join(exc.messages)
    return JsonResponse({"ok": False, "field": key, "error": message, "needs_reason": needs_reason}, status=status)


class TodayView(StaffView):
    """`/field/today/`: the engineer's visits of the day, in time order, for the phone."""

    permission = "tickets.view_ticket"

    def get(self, request):
        now = timezone.now()
        day = timezone.localdate(now)
        today, later = selectors.today_visits(user=request.user, day=day, now=now)
        return render(request, "fieldservice/today.html", {
            "today": today, "later": later, "day": day,
            "earnings": selectors.earnings_slot(user=request.user, day=day),
        })


class VisitView(StaffView):
    """`/field/visit/<ticket>/`: one visit on the phone; its POST actions answer JSON."""

    permission = "tickets.view_ticket"

    def load(self, pk):
        ticket = selectors.visit_ticket(user=self.request.user, pk=pk)
        if ticket is None:
            raise Http404
        return ticket

    def get(self, request, pk):
        ticket = self.load(pk)
        site, source = ticket_site_point(ticket)
        address = ticket_address_text(ticket)
        return render(request, "fieldservice/visit.html", {
            "ticket": ticket, "address": address, "site": site, "site_source": source,
            "nav_url": selectors.navigation_url(site=site, address=address),
            "phone": selectors.ticket_phone(ticket), "starts_at": selectors.appointment(ticket),
            "held": ticket_held_by(ticket=ticket, user=request.user),
            "open_visit": site_visit_open(ticket=ticket, engineer=request.user),
            "latest_visit": site_visit_latest(ticket=ticket, engineer=request.user),
            "visits": site_visits(ticket=ticket), "photos": site_photos(ticket=ticket),
            "radius_m": visit_radius_m(), "photo_max_mb": photo_max_mb(),
            "eta_default": timezone.localtime() + datetime.timedelta(minutes=30),
        })


class VisitActionView(VisitView):
    """POST `/field/visit/<ticket>/<action>/`: checkin, checkout, photo, signature."""

    permission = "tickets.change_ticket"
    actions = ("depart", "checkin", "checkout", "photo", "signature")

    def get(self, request, pk, action):
        self.load(pk)  # 404 for a ticket one may not see, like any other route
        return redirect("field-visit", pk=pk)

    def post(self, request, pk, action):
        if action not in self.actions:
            raise Http404
        ticket = self.load(pk)
        data, files, user = request.POST, request.FILES, request.user
        try:
            if action == "depart":
                return self.depart(ticket)
            if action == "checkin":
                visit = services.site_checkin(ticket=ticket, actor=user, lat=data.get("lat"), lng=data.get("lng"),
                                              accuracy=data.get("accuracy"), reason=data.get("reason", ""),
                                              photo=files.get("photo"))
                text = (_("Checked in, %(distance)s m from the site.") % {"distance": visit.in_distance_m}
                        if visit.in_distance_m is not None else _("Checked in."))
                if visit.flagged:
                    text += " " + _("Flagged for your manager with your reason.")
            elif action == "checkout":
                visit = services.site_checkout(ticket=ticket, actor=user, lat=data.get("lat"), lng=data.get("lng"))
                text = _("Checked out after %(minutes)s minutes on site.") % {"minutes": visit.minutes_on_site}
            elif action == "photo":
                attachment = services.site_photo_add(
                    ticket=ticket, actor=user, upload=files.get("photo"), phase=data.get("phase", ""),
                    node=selectors.visit_task_node(ticket=ticket, user=user),
                    # The template decides whether site photos reach the customer; the engineer
                    # may still keep a shot internal.
                    is_public=ticket.template.site_photos_public
                    and data.get("is_public", "1") not in ("0", "", "false"))
                return JsonResponse({"ok": True, "message": _("Photo uploaded."), "id": attachment.pk})
            else:
                services.site_signature_add(ticket=ticket, actor=user, upload=files.get("signature"),
                                            signer_name=data.get("signer_name", ""), rating=data.get("rating"),
                                            lat=data.get("lat"), lng=data.get("lng"))
                text = _("Signature saved. Thank the customer!")
        except ValidationError as exc:
            return _error(exc)
        return JsonResponse({"ok": True, "message": text})


    def depart(self, ticket):
        """我已出发: the customer is told the engineer is on the way, with the arrival time (the
        ticket page's action, here for the holder only)."""
        form = DepartForm(self.request.POST)
        if not form.is_valid():
            return JsonResponse({"ok": False, "field": "eta", "error": " ".join(form.errors.get("eta", [])),
                                 "needs_reason": False}, status=400)
        if not ticket_held_by(ticket=ticket, user=self.request.user):
            raise ValidationError({"__all__": _("Only the engineer holding this ticket can do this.")})
        services.ticket_engineer_depart(ticket=ticket, actor=self.request.user, eta=form.cleaned_data["eta"])
        return JsonResponse({"ok": True, "message": _("The customer has been told you are on the way.")})


def _day(value):
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


class CheckinsView(StaffView):
    """`/field/checkins/`: the manager's day — every check-in on tickets they may see, plotted
    (map-free: the positions and the sites scaled into a box) and listed; 待处理 the flagged ones."""

    permission = "tickets.view_sitevisit"

    def get(self, request):
        day = _day(request.GET.get("day", "")) or timezone.localdate()
        flagged = request.GET.get("flagged") == "1"
        visits, plot = selectors.day_checkins(user=request.user, day=day, flagged_only=flagged)
        return render(request, "fieldservice/checkins.html", {
            "visits": visits, "plot": plot, "day": day, "flagged": flagged,
            "prev_day": day - datetime.timedelta(days=1), "next_day": day + datetime.timedelta(days=1),
            "pending": sum(1 for v in visits if (v.flagged or v.out_flagged) and v.reviewed_at is None),
        })


class CheckinReviewView(StaffView):
    """POST `/field/checkins/<visit>/review/`: the manager has looked at a flagged check-in."""

    permission = "tickets.change_sitevisit"

    def load(self, pk):
        visible = visible_tickets(user=self.request.user)
        visit = SiteVisit.objects.filter(pk=pk, ticket__in=visible.values("pk")).first()
        if visit is None:
            raise Http404
        return visit

    def get(self, request, pk):
        visit = self.load(pk)
        return redirect(f"{reverse('field-checkins')}?day={timezone.localdate(visit.checked_in_at).isoformat()}")

    def post(self, request, pk):
        visit = self.load(pk)
        try:
            services.site_checkin_review(visit=visit, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Marked as reviewed."))
        day = timezone.localdate(visit.checked_in_at).isoformat()
        return redirect(f"{reverse('field-checkins')}?day={day}&flagged=1")
