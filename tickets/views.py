"""Ticket pages: the public web form and tracking page (no login), and the staff list, new
ticket, ticket page and its actions. Thin: selectors read, services write."""

import segno
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from notifications.selectors import ticket_notifications
from scrm.config_cache import config_pinned
from scrm.models import CustomerTier, Role, Tenant
from scrm.ratelimit import client_ip, rate_limited
from scrm.selectors import tenant_active_get, visible_customers
from scrm.tenancy import tenant_scope
from scrm.views import StaffView

from . import extensions, selectors, services
from . import fields as schema
from .forms import (
    AssignForm,
    BulkForm,
    CommentForm,
    ContactForm,
    CustomerReplyForm,
    DepartForm,
    MergeForm,
    RatingForm,
    SplitForm,
    StaffTicketForm,
)
from .models import OPEN_STATUSES, Attachment, Priority, Source, Status
from .selectors_visits import site_visit_last, site_visits

PAGE_SIZES = (25, 50, 100)  # rows per page the ticket list offers; the first is the default


def _public_rate():
    """Requests per minute and IP the public form and tracking replies take."""
    return getattr(settings, "PUBLIC_FORM_RATE_PER_MINUTE", 20)


def _field_errors_to_form(form, exc):
    """Put a service's ValidationError onto the form: known fields get field errors."""
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- public ---------------------------------------------------------------------------------

# The form classes a public-form POST is read and validated with, per published version (never
# changed once published) and language: building one costs a picker query and the schema check.
# Their picker widgets keep the choices of when they were built, which reading a POST never
# uses; a form shown again (with errors) is built afresh.
_POST_FORM_CLASSES = {}
_POST_FORM_CLASSES_MAX = 512


def _post_form_class(version, *, audience):
    key = (version.pk, audience, get_language())
    form_class = _POST_FORM_CLASSES.get(key)
    if form_class is None:
        if len(_POST_FORM_CLASSES) >= _POST_FORM_CLASSES_MAX:
            _POST_FORM_CLASSES.clear()
        form_class = _POST_FORM_CLASSES[key] = schema.form_class_for(version.fields, audience=audience,
                                                                     read_only=True)
    return form_class


# Picker types whose choices are live rows, not the tenant's cached configuration.
LIVE_PICKERS = frozenset({"staff", "customer"})


def _public_tenant(slug):
    tenant = tenant_active_get(slug=slug)
    if tenant is None:
        raise Http404
    return tenant


class PublicFormView(View):
    """`/s/<tenant>/<template>/`: the template's public fields plus a contact block."""

    def dispatch(self, request, tenant_slug, template_slug):
        self.tenant = _public_tenant(tenant_slug)
        # The tenant row was just read: its config stamp serves every cached read of the request.
        with tenant_scope(self.tenant), config_pinned(self.tenant, stamp=self.tenant.config_stamp):
            self.template = selectors.template_public_get(slug=template_slug)
            if self.template is None:
                raise Http404
            return super().dispatch(request)

    def form_class(self):
        return schema.form_class_for(self.template.current_version.fields, audience="public")

    def contact_keys(self):
        """(name key, phone key) when the template asks for contact details itself; then the
        fixed contact block is not shown twice."""
        public = [f for f in self.template.current_version.fields if f.get("public") == "edit"]
        phone = next((f["key"] for f in public if f["type"] == "phone"), None)
        name = next((f["key"] for f in public if f["type"] == "text" and (
            f.get("prefill") == "customer.name" or f["key"] in ("contact_name", "name"))), None)
        return name, phone

    def contact_form(self, data=None):
        return None if self.contact_keys()[1] else ContactForm(data)

    def get(self, request):
        return self.render(self.contact_form(), None)

    def post(self, request):
        if rate_limited(scope="public-form", ident=client_ip(request), limit=_public_rate()):
            return render(request, "tickets/public/rate_limited.html", {"tenant": self.tenant}, status=429)
        contact = self.contact_form(request.POST)
        fields_form = _post_form_class(self.template.current_version, audience="public")(request.POST, request.FILES)
        contact_ok, fields_ok = (contact is None or contact.is_valid()), fields_form.is_valid()
        intake_error = None
        if contact_ok and fields_ok:
            if contact is None:
                name_key, phone_key = self.contact_keys()
                data = fields_form.cleaned_json
                who = {"name": data.get(name_key) or "", "phone": data[phone_key]}
            else:
                who = {"name": contact.cleaned_data["contact_name"], "phone": contact.cleaned_data["contact_phone"]}
            try:
                ticket = services.ticket_intake(
                    tenant=self.tenant, source=Source.WEB, template=self.template, data=fields_form.raw_data,
                    files=fields_form.raw_files, audience="public",
                    contact=who,
                    raw_payload={"form": {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"},
                                 "files": [f.name for f in request.FILES.values()], "ip": client_ip(request)},
                    # The form's clean() just ran data_clean on this version: no second pass.
                    cleaned=(fields_form.cleaned_json, fields_form.files_to_store),
                )
            except ValidationError as exc:
                intake_error = exc
            else:
                return redirect("ticket-public-thanks", token=ticket.tracking_token)
        # Shown again: a freshly built form (current picker choices) with the same errors.
        fields_form = self.form_class()(request.POST, request.FILES)
        fields_form.is_valid()
        if intake_error is not None:
            _field_errors_to_form(fields_form, intake_error)
        # A browser never refills a file input: say which photos were chosen and must be chosen again.
        reselect = {name: [f.name for f in request.FILES.getlist(name)][:10] for name in fields_form.fields
                    if request.FILES.getlist(name)}
        return self.render(contact, fields_form, status=400, reselect=reselect)

    def render(self, contact, fields_form, status=200, reselect=None):
        """`fields_form` None: the empty form of a first visit. Its fields are the same for every
        visitor of this version in this language until the tenant's configuration (stores,
        regions) changes, so their HTML is cached under that stamp and the form is built only
        when the cache has no copy. A form with pickers of live data (staff, customers) is
        rendered every time."""
        fields_key = None
        if fields_form is None:
            version = self.template.current_version
            if not any(f.get("type") in LIVE_PICKERS for f in version.fields if f.get("public") in ("edit", "view")):
                fields_key = f"{self.tenant.pk}:{version.pk}:{self.tenant.config_stamp}:{get_language()}"
            form_class = self.form_class
            fields_form = SimpleLazyObject(lambda: form_class()())
        return render(self.request, "tickets/public/form.html", {
            "tenant": self.tenant, "template": self.template, "contact": contact, "form": fields_form,
            "reselect": reselect or {}, "fields_key": fields_key,
        }, status=status)


def _tracked_ticket(token):
    """(tenant, ticket) for a tracking token; the token starts with the tenant id in hex."""
    head, _sep, _rest = token.partition("-")
    try:
        tenant_id = int(head, 16)
    except ValueError:
        raise Http404 from None
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        raise Http404
    return tenant


@never_cache
def public_thanks(request, token):
    tenant = _tracked_ticket(token)
    with tenant_scope(tenant):
        ticket = selectors.ticket_by_tracking_token(token=token)
        if ticket is None:
            raise Http404
        return render(request, "tickets/public/thanks.html", {"tenant": tenant, "ticket": ticket})


class TrackView(View):
    """`/track/<token>/`: status and public timeline, like a parcel; the customer may add a message."""

    def dispatch(self, request, token):
        self.tenant = _tracked_ticket(token)
        with tenant_scope(self.tenant):
            self.ticket = selectors.ticket_by_tracking_token(token=token)
            if self.ticket is None:
                raise Http404
            return super().dispatch(request)

    def get(self, request):
        return self.render(CustomerReplyForm())

    def post(self, request):
        if rate_limited(scope="track-reply", ident=client_ip(request), limit=_public_rate()):
            return render(request, "tickets/public/rate_limited.html", {"tenant": self.tenant}, status=429)
        form = CustomerReplyForm(request.POST)
        if form.is_valid() and self.ticket.is_open:
            services.ticket_comment_add(
                ticket=self.ticket, body=form.cleaned_data["body"], actor=None,
                actor_label=self.ticket.customer.name if self.ticket.customer_id else _("Customer"), is_public=True,
            )
            return redirect("ticket-track", token=self.ticket.tracking_token)
        if not self.ticket.is_open:
            form.add_error(None, _("This ticket is closed; please submit a new request."))
        return self.render(form, status=400)

    def render(self, form, status=200, rating_form=None):
        steps = [Status.NEW, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED]
        rating = getattr(self.ticket, "rating", None) if hasattr(self.ticket, "rating") else None
        refusal = services.csat_refusal(ticket=self.ticket) if rating is None else None
        current = self.ticket.status if self.ticket.status in steps else Status.IN_PROGRESS
        # Only the customer's wording of each public entry: entries for staff only (workflow
        # internals, who handles it inside) have none and are left out.
        events = [(e, text) for e in selectors.ticket_timeline(ticket=self.ticket, public_only=True)
                  if (text := e.public_text) is not None]
        on_the_way = next((e for e, _text in reversed(events) if e.code == "ticket.on_the_way"), None)
        link = self.request.build_absolute_uri(reverse("ticket-track", args=[self.ticket.tracking_token]))
        return render(self.request, "tickets/public/track.html", {
            "tenant": self.tenant, "ticket": self.ticket, "form": form, "events": events, "link": link,
            # segno draws the QR code as SVG markup from our own URL: nothing a user typed is in it.
            "qr_svg": mark_safe(segno.make(link, error="m").svg_inline(scale=3, dark="#1f2937")),  # noqa: S308
            "site_visit": site_visit_last(ticket=self.ticket)
            if any(e.code == "ticket.site_checkin" for e, _text in events) else None,
            "on_the_way": on_the_way,
            "steps": [(s, Status(s).label, steps.index(s) <= steps.index(current)) for s in steps],
            "rating": rating, "rating_open": rating is None and refusal is None,
            "rating_form": rating_form or RatingForm(),
        }, status=status)


class TrackRateView(TrackView):
    """`/track/<token>/rate/` (POST): the customer's rating, once, within the rating period;
    rate-limited per IP like the replies. A refused rating re-renders the page with the reason."""

    http_method_names = ["post"]

    def post(self, request):
        if rate_limited(scope="track-rate", ident=client_ip(request), limit=_public_rate()):
            return render(request, "tickets/public/rate_limited.html", {"tenant": self.tenant}, status=429)
        form = RatingForm(request.POST)
        if form.is_valid():
            try:
                services.csat_rate(ticket=self.ticket, score=form.cleaned_data["score"],
                                   comment=form.cleaned_data["comment"])
            except ValidationError as exc:
                _field_errors_to_form(form, exc)
            else:
                return redirect("ticket-track", token=self.ticket.tracking_token)
        return self.render(CustomerReplyForm(), status=400, rating_form=form)


# --- staff ----------------------------------------------------------------------------------

def ticket_list_filters(request):
    """The ticket list's filters from the query string (unknown values are dropped), as keyword
    arguments of selectors.ticket_list: the list and its export (dashboards) read the same."""
    status = request.GET.get("status", "")
    priority = request.GET.get("priority", "")

    def int_param(name):
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() else None

    return {
        "search": request.GET.get("q", "").strip()[:60],
        "status": status if status in Status.values else "",
        "priority": priority if priority in Priority.values else "",
        "template_id": int_param("template"),
        "store_id": int_param("store"),
        "mine": request.GET.get("mine") == "1",
        "open_only": request.GET.get("open") == "1",
        "created_since": _since(request.GET.get("created")),
        "resolved_since": _since(request.GET.get("resolved")),
    }


BULK_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.REGIONAL_MANAGER, Role.AGENT})


class TicketListView(StaffView):
    permission = "tickets.view_ticket"

    def get(self, request):
        filters = ticket_list_filters(request)
        per_page = self.int_param("per_page")
        per_page = per_page if per_page in PAGE_SIZES else PAGE_SIZES[0]
        page = selectors.ticket_page(selectors.ticket_list(user=request.user, **filters), request.GET.get("page"),
                                     per_page=per_page)
        _label_rows(page.object_list)
        extensions.list_badges(tickets=page.object_list)
        context = {
            "page": page, "filters": filters, "statuses": Status.choices, "priorities": Priority.choices,
            "templates": selectors.template_choices(), "query": self.querystring(), "per_page": per_page,
            "page_sizes": PAGE_SIZES, "size_query": self.querystring_without("per_page"),
            # Dispatch and close in bulk: for those who move tickets by hand, not for engineers
            # (who work through their tasks) or finance.
            "can_bulk": getattr(getattr(request, "membership", None), "role", "") in BULK_ROLES
            and request.user.has_perm("tickets.change_ticket"),
        }
        if context["can_bulk"] and not request.headers.get("HX-Request"):
            context["bulk_form"] = BulkForm()
        template = "tickets/_list_table.html" if request.headers.get("HX-Request") else "tickets/list.html"
        return render(request, template, context)


    def querystring_without(self, *names):
        """The current filters without the page number and `names` (links that set them)."""
        params = self.request.GET.copy()
        for name in ("page", *names):
            params.pop(name, None)
        return params.urlencode()


def _since(period):
    """The start of "today" or of the last 7 days ("week") for the list's date links (the
    工作台's figures); None for anything else."""
    if period not in ("today", "week"):
        return None
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return start if period == "today" else timezone.now() - timezone.timedelta(days=7)


def _label_rows(rows):
    """Give each row of the list its labels and link, worked out once per page: Django's
    get_FOO_display() rebuilds its choices map and translates on every call, and a row has four
    of them, a date and a URL — with 100 rows that was most of the page's time."""
    labels = {name: {value: str(label) for value, label in choices} for name, choices in (
        ("status", Status.choices), ("priority", Priority.choices), ("source", Source.choices),
        ("tier", CustomerTier.choices))}
    marker = 987654321  # reverse() once; every row's link differs only in its pk
    detail_url = reverse("ticket-detail", args=[marker]).replace(str(marker), "{}")
    for ticket in rows:
        ticket.detail_url = detail_url.format(ticket.pk)
        ticket.status_label = labels["status"].get(ticket.status, ticket.status)
        ticket.priority_label = labels["priority"].get(ticket.priority, ticket.priority)
        ticket.source_label = labels["source"].get(ticket.source, ticket.source)
        ticket.created_label = timezone.localtime(ticket.created_at).strftime("%m-%d %H:%M")  # |date:"m-d H:i"
        if ticket.customer is not None:
            ticket.customer.tier_label = labels["tier"].get(ticket.customer.tier, ticket.customer.tier)
    return rows


class TicketNewChooseView(StaffView):
    permission = "tickets.add_ticket"

    def get(self, request):
        templates = selectors.template_list(active_only=True).filter(current_version__isnull=False)
        return render(request, "tickets/new_choose.html", {"templates": templates, "query": request.GET.urlencode()})


class TicketCreateView(StaffView):
    """Staff 'new ticket' for phone calls and walk-ins, with customer search or creation; the
    customer and opportunity pages link here with ?customer= / ?opportunity=. The form resolves
    those among what the user may see: the page 404s for one they may not, a POST gets an error."""

    permission = "tickets.add_ticket"

    def setup_template(self, template_id):
        self.template = selectors.template_published(pk=template_id)
        if self.template is None:
            raise Http404

    def get(self, request, template_id):
        self.setup_template(template_id)
        base = StaffTicketForm(user=request.user, opportunity_id=self.int_param("opportunity"), initial={
            "priority": self.template.default_priority, "source": "phone", "customer_id": self.int_param("customer"),
        })
        if base.links_missing:
            raise Http404
        version_fields = self.template.current_version.fields
        initial = schema.prefill_values(version_fields, customer=base.customer, opportunity=base.opportunity)
        fields_form = schema.form_class_for(version_fields, audience="staff", data_initial=initial)()
        return self.render(base, fields_form)

    def post(self, request, template_id):
        self.setup_template(template_id)
        base = StaffTicketForm(request.POST, user=request.user, opportunity_id=self.int_param("opportunity"))
        fields_form = schema.form_class_for(self.template.current_version.fields, audience="staff")(
            request.POST, request.FILES)
        base_ok, fields_ok = base.is_valid(), fields_form.is_valid()
        if base_ok and fields_ok:
            data = base.cleaned_data
            contact = None if base.customer else {"name": data["customer_name"], "phone": data["customer_phone"]}
            try:
                ticket = services.ticket_intake(
                    tenant=request.tenant, source=data["source"], template=self.template,
                    data=fields_form.raw_data, files=fields_form.raw_files, audience="staff", title=data["title"],
                    description=data["description"], priority=data["priority"], customer=base.customer,
                    contact=contact, opportunity=base.opportunity, actor=request.user,
                    raw_payload={"entered_by": request.user.username},
                )
            except ValidationError as exc:
                _field_errors_to_form(base, exc)
            else:
                messages.success(request, _("Ticket %(number)s created.") % {"number": ticket.number})
                return redirect("ticket-detail", pk=ticket.pk)
        return self.render(base, fields_form, status=400)

    def render(self, base, fields_form, status=200):
        return render(self.request, "tickets/new.html", {
            "template": self.template, "base": base, "form": fields_form, "customer": base.customer,
            "opportunity": base.opportunity,
        }, status=status)


class CustomerSearchView(StaffView):
    """htmx: customers matching a name or phone, for the new-ticket form."""

    permission = "scrm.view_customer"

    def get(self, request):
        q = request.GET.get("q", "").strip()[:40]
        customers = []
        if len(q) >= 2:
            customers = list(
                visible_customers(user=request.user).filter(phone__startswith=q)[:8]
                if q.isdigit() else visible_customers(user=request.user).filter(name__icontains=q)[:8]
            )
        return render(request, "tickets/_customer_results.html", {"customers": customers, "q": q})


class TicketBulkView(TicketListView):
    """POST from the list's bulk bar: dispatch or close the ticked tickets, each through the
    lifecycle; says what was done and what was refused and why. Bad input gets the list back
    with the error (400) and changes nothing."""

    permission = "tickets.change_ticket"

    def post(self, request):
        if getattr(request.membership, "role", "") not in BULK_ROLES:
            raise PermissionDenied
        form = BulkForm(request.POST)
        if not form.is_valid():
            return self.refuse(" ".join(e for errors in form.errors.values() for e in errors))
        ids = form.cleaned_data["ids"]
        tickets = list(selectors.visible_tickets(user=request.user).filter(pk__in=ids).order_by("id"))
        try:
            result = services.tickets_bulk_apply(tickets=tickets, action=form.cleaned_data["action"],
                                                 actor=request.user, assignee=form.cleaned_data["assignee"])
        except ValidationError as exc:
            return self.refuse(" ".join(exc.messages))
        if result.done:
            messages.success(request, _("Done for %(n)d tickets.") % {"n": len(result.done)})
        for number, why in result.refused:
            messages.warning(request, f"{number}：{why}")
        missing = len(set(ids)) - len(tickets)
        if missing:
            messages.warning(request, _("%(n)d tickets were not found.") % {"n": missing})
        target = request.POST.get("next", "")
        return redirect(target if url_has_allowed_host_and_scheme(target, allowed_hosts=None)
                        and target.startswith("/tickets/") else reverse("ticket-list"))

    def refuse(self, message):
        messages.error(self.request, message)
        response = self.get(self.request)
        response.status_code = 400
        return response


class TicketDetailView(StaffView):
    permission = "tickets.view_ticket"

    def get_ticket(self, pk):
        ticket = selectors.ticket_get(user=self.request.user, pk=pk)
        if ticket is None:
            raise Http404
        return ticket

    def get(self, request, pk):
        ticket = self.get_ticket(pk)
        return self.render(ticket)

    def render(self, ticket, status=200, **forms):
        version_fields = ticket.template_version.fields
        # Field-level permission: an engineer sees the fields their workflow nodes allow.
        scope = extensions.field_scope(ticket=ticket, user=self.request.user)
        known_names = _names_on_ticket(ticket)
        field_rows = [
            {"field": f, "label": schema.field_label(f),
             "value": schema.display_value(f, ticket.data.get(f["key"]), known_names=known_names)}
            for f in version_fields if scope is None or f["key"] in scope
        ]
        # Working a ticket (comment, reply to the customer, attach, 我已出发) is open to whoever may
        # change tickets, engineers included; editing, dispatching, status and split/merge only to
        # those whose view is not narrowed to their workflow node's fields.
        can_work = self.request.user.has_perm("tickets.change_ticket")
        can_change = can_work and scope is None
        # The fields' edit form and the split form come with the page only after a failed save
        # (with their errors); otherwise "Edit fields" and "Split into child tickets" load them
        # when first opened (TicketActionView.get): most visits only read.
        edit_form = forms.get("edit_form")
        attachments = list(selectors.ticket_attachments(ticket=ticket))
        events = list(selectors.ticket_timeline(ticket=ticket, attachments=attachments))
        # The visits are read only for a ticket whose timeline shows a check-in: most have none,
        # and the page keeps its query budget.
        visited = any(event.code == "ticket.site_checkin" for event in events)
        context = {
            "ticket": ticket, "field_rows": field_rows, "edit_form": edit_form,
            "timeline": _timeline(events, ticket_notifications(ticket=ticket)),
            "attachments": attachments,
            "related": selectors.ticket_related(ticket=ticket),
            "site_visits": site_visits(ticket=ticket) if visited else [],
            "comment_form": forms.get("comment_form", CommentForm()),
            "assign_form": forms.get("assign_form"),
            "split_form": forms.get("split_form"),
            "merge_form": forms.get("merge_form", MergeForm()),
            "actions": extensions.lifecycle().ticket_status_actions(ticket=ticket),
            "can_change": can_change,
            "can_work": can_work,
            "open_statuses": OPEN_STATUSES,
            "panel_urls": [reverse(name, args=[ticket.pk]) for name in extensions.ticket_panels()],
        }
        return render(self.request, "tickets/detail.html", context, status=status)


def _names_on_ticket(ticket):
    """{picker type: {id: name}} of the ticket's own store, region and customer, which
    ticket_get has joined: a store/region/customer field usually holds one of them."""
    return {kind: {getattr(ticket, f"{kind}_id"): getattr(ticket, kind).name}
            for kind in ("store", "region", "customer") if getattr(ticket, f"{kind}_id")}


def _edit_form(ticket):
    """The staff form for the fields staff may edit, filled with the ticket's data."""
    fields = [f for f in ticket.template_version.fields if f.get("staff", "edit") == "edit"]
    return schema.form_class_for(fields, audience="staff", data_initial=ticket.data)()


def _timeline(events, notifications):
    """Events and outgoing notifications in one list, oldest first, for the 操作记录墙."""
    rows = [("event", e.created_at, e) for e in events] + [("notification", n.created_at, n) for n in notifications]
    return [(kind, item) for kind, _at, item in sorted(rows, key=lambda r: r[1])]


class TicketActionView(TicketDetailView):
    """POST-only actions on a ticket: comment, edit fields, assign, status, split, merge."""

    permission = "tickets.change_ticket"
    # What someone whose view is narrowed to their workflow node (an engineer) may still do: work
    # the ticket without moving it. Everything else moves it, which their task's panel does.
    WORK_ACTIONS = frozenset({"comment", "depart"})

    def get(self, request, pk, action):
        ticket = self.get_ticket(pk)  # 404 for tickets one may not see, like any other route
        if request.headers.get("HX-Request") and ticket.status in OPEN_STATUSES:
            # "Edit fields", "Split into child tickets" and the assignee picker on the ticket page
            # load their form here, on demand.
            if action == "edit":
                return render(request, "tickets/_edit_form.html", {"ticket": ticket, "edit_form": _edit_form(ticket)})
            if action == "split":
                return render(request, "tickets/_split_form.html", {"ticket": ticket, "split_form": SplitForm()})
            if action == "assign":
                form = AssignForm(initial={"assignee": ticket.assignee_id})
                return render(request, "tickets/_assign_form.html", {"ticket": ticket, "assign_form": form})
        return redirect("ticket-detail", pk=pk)

    def post(self, request, pk, action):
        ticket = self.get_ticket(pk)
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise Http404
        if action not in self.WORK_ACTIONS and extensions.field_scope(ticket=ticket, user=request.user) is not None:
            raise PermissionDenied
        try:
            result = handler(ticket)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return self.render(self.get_ticket(pk), status=400)
        if isinstance(result, HttpResponse):
            return result
        return redirect("ticket-detail", pk=pk)

    def do_comment(self, ticket):
        form = CommentForm(self.request.POST, self.request.FILES)
        if not form.is_valid():
            return self.render(ticket, status=400, comment_form=form)
        services.ticket_comment_add(ticket=ticket, body=form.cleaned_data["body"], actor=self.request.user,
                                    is_public=form.cleaned_data["is_public"], files=form.cleaned_data["files"])
        messages.success(self.request, _("Comment added."))

    def do_edit(self, ticket):
        fields = [f for f in ticket.template_version.fields if f.get("staff", "edit") == "edit"]
        form = schema.form_class_for(fields, audience="staff")(self.request.POST, self.request.FILES)
        if not form.is_valid():
            return self.render(ticket, status=400, edit_form=form)
        services.ticket_data_update(ticket=ticket, actor=self.request.user, data=form.raw_data, files=form.raw_files)
        messages.success(self.request, _("Saved."))

    def do_assign(self, ticket):
        form = AssignForm(self.request.POST)
        if not form.is_valid():
            return self.render(ticket, status=400, assign_form=form)
        extensions.lifecycle().ticket_assign(ticket=ticket, assignee=form.cleaned_data["assignee"],
                                             actor=self.request.user)
        messages.success(self.request, _("Assignment saved."))

    def do_depart(self, ticket):
        form = DepartForm(self.request.POST)
        if not form.is_valid():
            messages.error(self.request, " ".join(form.errors.get("eta", [])))
            return self.render(ticket, status=400)
        services.ticket_engineer_depart(ticket=ticket, actor=self.request.user, eta=form.cleaned_data["eta"])
        messages.success(self.request, _("The customer has been told you are on the way."))

    def do_status(self, ticket):
        extensions.lifecycle().ticket_status_change(
            ticket=ticket, action=self.request.POST.get("to", ""), actor=self.request.user,
            note=self.request.POST.get("note", "")[:500])
        messages.success(self.request, _("Status changed."))

    def do_split(self, ticket):
        form = SplitForm(self.request.POST)
        if not form.is_valid():
            return self.render(ticket, status=400, split_form=form)
        children = services.ticket_split(ticket=ticket, actor=self.request.user, parts=[
            {"title": title, "template": form.cleaned_data["template"]} for title in form.cleaned_data["titles"]
        ])
        messages.success(self.request, _("Split into %(n)d tickets.") % {"n": len(children)})

    def do_merge(self, ticket):
        form = MergeForm(self.request.POST)
        if not form.is_valid():
            return self.render(ticket, status=400, merge_form=form)
        target = selectors.visible_tickets(user=self.request.user).filter(
            number=form.cleaned_data["target_number"].strip().upper()).first()
        if target is None:
            form.add_error("target_number", _("No ticket with this number."))
            return self.render(ticket, status=400, merge_form=form)
        extensions.lifecycle().ticket_merge(source=ticket, target=target, actor=self.request.user)
        messages.success(self.request, _("Merged into %(number)s.") % {"number": target.number})
        return redirect("ticket-detail", pk=target.pk)


class AttachmentDownloadView(StaffView):
    permission = "tickets.view_ticket"

    def get(self, request, pk):
        attachment = Attachment.objects.filter(
            pk=pk, ticket__in=selectors.visible_tickets(user=request.user).values("pk")).first()
        if attachment is None:
            raise Http404
        return FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.name)


def public_attachment(request, token, pk):
    tenant = _tracked_ticket(token)
    with tenant_scope(tenant):
        ticket = selectors.ticket_by_tracking_token(token=token)
        attachment = Attachment.objects.filter(pk=pk, ticket=ticket, is_public=True).first() if ticket else None
        if attachment is None:
            raise Http404
        return FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.name)


# --- health ---------------------------------------------------------------------------------

@require_GET
@never_cache
def healthz(request):
    """Liveness (`?live=1`: the process answers) and readiness: database, cache and broker."""
    if request.GET.get("live"):
        return JsonResponse({"status": "ok"})
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from django.core.cache import cache

        cache.set("healthz", "1", 5)
        checks["cache"] = "ok" if cache.get("healthz") == "1" else "error: read back failed"
    except Exception as exc:
        checks["cache"] = f"error: {type(exc).__name__}"
    try:
        from scrm.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


