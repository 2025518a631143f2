"""Ticket reads: what a person may see, the list page, the ticket page, the public tracking
page, classification rules and templates for the intake channels."""

from collections import defaultdict

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import F, Lookup, Prefetch, Q, Subquery
from django.utils.functional import cached_property

from scrm.config_cache import tenant_config
from scrm.models import Customer
from scrm.permissions import TENANT_WIDE_ROLES
from scrm.selectors import membership_current, visibility_q

from . import extensions
from .classification import Rule
from .models import (
    OPEN_STATUSES,
    ApiKey,
    Attachment,
    Category,
    ClassificationRule,
    Status,
    Ticket,
    TicketTemplate,
)


def visible_tickets(*, user):
    """Tickets the user may see: the whole tenant for tenant-wide roles; otherwise tickets of
    their regions/stores (from grants and home store), tickets assigned to them, and tickets
    where they hold an open workflow task (as handler, backup or co-handler)."""
    qs = Ticket.objects.all()
    if user.is_superuser:
        return qs
    membership = membership_current(user=user)
    if membership is None:
        return qs.none()
    if membership.role in TENANT_WIDE_ROLES:
        return qs
    q = visibility_q(user=user) | Q(assignee=user)
    extra = extensions.visibility_q(user=user)  # e.g. tickets whose workflow task they hold
    return qs.filter(q | extra if extra is not None else q)


class CappedPaginator(Paginator):
    """Counts at most `cap` rows: an exact COUNT(*) over a million tickets costs more than the
    page itself, and nobody pages to row 10,001."""

    cap = 10000

    @cached_property
    def count(self):
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def is_capped(self):
        return self.count > self.cap

    def page(self, number):
        """Like Paginator.page, but the last page keeps LIMIT per_page instead of shrinking it to
        the rows left: a search with one hit asked for LIMIT 1, and PostgreSQL, expecting more
        hits, then walked the whole (tenant, created) index looking for it (0.8 s at 1M tickets)."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if self.orphans and top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self.object_list[bottom:top], number, self)


def _search_q(search):
    """Number (exact), title (contains, any case), or the customer's phone or name (exact).

    Written so PostgreSQL can answer it from indexes at a million tickets — a BitmapOr of the
    (tenant, number) unique index, the trigram index on UPPER(title) (migration 0002) and
    (tenant, customer, created) — instead of joining the customers and scanning every ticket:
    the customers are a subquery the planner runs once (`= ANY(ARRAY(SELECT …))`), not a join."""
    customers = Customer.objects.filter(Q(phone=search) | Q(name=search)).order_by().values("pk")
    if connection.vendor == "postgresql":
        of_customers = _EqualsAnyOf(F("customer_id"), Subquery(customers))
    else:
        of_customers = Q(customer_id__in=customers)
    return Q(number=search.upper()) | Q(title__icontains=search) | of_customers


class _EqualsAnyOf(Lookup):
    """`lhs = ANY(ARRAY(<subquery>))` (PostgreSQL): unlike `IN (<subquery>)`, an index condition
    even inside an OR, the subquery running once as an InitPlan."""

    lookup_name = "equals_any_of"  # used directly as an expression, not registered on fields

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def ticket_list(*, user, search="", status="", priority="", template_id=None, category_id=None, region_id=None,
                store_id=None, assignee_id=None, mine=False, open_only=False, created_since=None, resolved_since=None):
    """The staff ticket list: visible tickets, filtered, newest first, with everything a row shows.
    `created_since` / `resolved_since` (datetimes) are the 工作台's "new today", "resolved today"."""
    qs = visible_tickets(user=user).select_related("template", "category", "customer", "store", "assignee")
    if created_since is not None:
        qs = qs.filter(created_at__gte=created_since)
    if resolved_since is not None:
        qs = qs.filter(finished_since_q(resolved_since))
    if search:
        qs = qs.filter(_search_q(search))
    if status:
        qs = qs.filter(status=status)
    elif open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    for field, value in (("priority", priority), ("template_id", template_id), ("category_id", category_id),
                         ("region_id", region_id), ("store_id", store_id), ("assignee_id", assignee_id)):
        if value:
            qs = qs.filter(**{field: value})
    if mine:
        qs = qs.filter(assignee=user)
    return qs.only(
        "id", "number", "title", "priority", "status", "source", "created_at", "updated_at", "tenant_id",
        "template__id", "template__name", "category__id", "category__name", "customer__id", "customer__name",
        "customer__phone", "customer__tier", "store__id", "store__name", "assignee__id", "assignee__username",
        "assignee__first_name",
    ).order_by("-created_at", "-id")


def finished_since_q(since):
    """Tickets resolved since `since` — or, never marked resolved, closed (not cancelled) since
    then, as a workflow's end node closes a ticket directly. Both columns are indexed."""
    return Q(resolved_at__gte=since) | Q(resolved_at__isnull=True, status=Status.CLOSED, closed_at__gte=since)


def ticket_page(queryset, page_number, per_page=25) -> Page:
    return CappedPaginator(queryset, per_page).get_page(page_number)


def ticket_get(*, user, pk):
    """One visible ticket with what its page shows, or None."""
    rows = list(
        visible_tickets(user=user)
        # What every ticket's page shows, no more. PostgreSQL's planning time, not the run, is
        # this query's cost, and it grows steeply with the joins and with ORDER BY … LIMIT
        # (which `.first()` adds); the primary key finds one row at most, so neither is needed
        # (figures: README, bench_ticket_pages). The parent, the ticket merged into and the
        # opportunity, which few tickets have, load on first use instead (a query each, when set).
        .select_related("template", "template_version", "customer", "store", "region", "assignee", "workflow_run")
        .filter(pk=pk)
        .order_by()
    )
    return rows[0] if rows else None


def ticket_timeline(*, ticket, public_only=False, attachments=None):
    """The ticket's events, oldest first, each with its attachments in `event.attachment_list`.
    Pass `attachments` (all of the ticket's, from ticket_attachments, as the ticket page shows
    them anyway) and the events take theirs from that list instead of a query of their own."""
    events = ticket.events.select_related("actor")
    if public_only:
        events = events.filter(is_public=True)
    events = events.order_by("created_at", "id")
    if attachments is None:
        return events.prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id"),
                                                to_attr="attachment_list"))
    by_event = defaultdict(list)
    for attachment in sorted(attachments, key=lambda a: a.pk):
        if attachment.event_id is not None:
            by_event[attachment.event_id].append(attachment)
    events = list(events)
    for event in events:
        event.attachment_list = by_event.get(event.pk, [])
    return events


def ticket_attachments(*, ticket, public_only=False):
    qs = ticket.attachments.order_by("id")
    return qs.filter(is_public=True) if public_only else qs


def ticket_related(*, ticket):
    """Children, merged duplicates (one query for both), and the customer's other recent tickets."""
    linked = list(
        Ticket.objects.filter(Q(parent=ticket) | Q(merged_into=ticket))
        .only("id", "number", "title", "status", "parent_id", "merged_into_id").order_by("id")
    )
    children = [t for t in linked if t.parent_id == ticket.pk]
    merged = [t for t in linked if t.merged_into_id == ticket.pk]
    recent = []
    if ticket.customer_id:
        recent = list(
            Ticket.objects.filter(customer_id=ticket.customer_id).exclude(pk=ticket.pk)
            .only("id", "number", "title", "status", "created_at").order_by("-created_at")[:5]
        )
    return {"children": children, "merged": merged, "customer_recent": recent}


def ticket_by_tracking_token(*, token):
    """The ticket a public tracking link points at (scope must be open), or None."""
    return (
        Ticket.objects.select_related("template", "store", "merged_into").filter(tracking_token=token).first()
    )


def ticket_open_for_sender(*, customer):
    """The customer's most recent open ticket: a new message from them becomes its comment."""
    return Ticket.objects.filter(customer=customer, status__in=OPEN_STATUSES).order_by("-created_at").first()


def ticket_by_number(*, number):
    return Ticket.objects.filter(number=number).first()


def classification_rules():
    """The tenant's active rules as plain data, in the order they are tried (every intake runs
    them: cached per tenant until a rule changes)."""
    return tenant_config().get("classification_rules", _classification_rules_load)


def _classification_rules_load():
    # One query: a rule with tags comes back once per tag, their ids in name order.
    rows = (
        ClassificationRule.objects.filter(is_active=True)
        .order_by("order", "id", "add_tags__name", "add_tags__id")
        .values_list("id", "name", "keywords", "match", "set_template_id", "set_category_id", "set_priority",
                     "add_tags__id")
    )
    rules, tags = {}, {}
    for pk, name, keywords, match, template_id, category_id, priority, tag_id in rows:
        if pk not in rules:
            rules[pk] = (name, keywords, match, template_id, category_id, priority)
            tags[pk] = []
        if tag_id is not None:
            tags[pk].append(tag_id)
    return tuple(
        Rule(id=pk, name=name, keywords=tuple(keywords or ()), match_all=match == ClassificationRule.Match.ALL,
             template_id=template_id, category_id=category_id, priority=priority, tag_ids=tuple(tags[pk]))
        for pk, (name, keywords, match, template_id, category_id, priority) in rules.items()
    )


def template_list(*, active_only=False):
    qs = TicketTemplate.objects.select_related("category", "current_version").order_by("category__order", "name")
    return qs.filter(is_active=True) if active_only else qs


def template_choices():
    """(id, name) of every template, in the list's order: the ticket list's filter."""
    return [
        {"pk": pk, "name": name}
        for pk, name in TicketTemplate.objects.order_by("category__order", "name").values_list("pk", "name")
    ]


def template_public_get(*, slug):
    """The published public template with this slug, or None. Every public-form request asks:
    found ones are cached per tenant until a template changes (callers only read them)."""
    return tenant_config().get(f"public_template:{slug}", lambda: (
        TicketTemplate.objects.select_related("current_version", "category")
        .filter(slug=slug, is_public=True, is_active=True, current_version__isnull=False)
        .first()
    ), keep_none=False)


def template_active_get(*, slug):
    """The active template with this slug (public or not), with its published version, or None:
    what the API files a ticket against. Cached like template_public_get."""
    return tenant_config().get(f"active_template:{slug}", lambda: (
        TicketTemplate.objects.select_related("current_version", "category")
        .filter(slug=slug, is_active=True)
        .first()
    ), keep_none=False)


def template_published(*, pk):
    return TicketTemplate.objects.select_related("current_version").filter(
        pk=pk, is_active=True, current_version__isnull=False
    ).first()


def category_list():
    return Category.objects.order_by("order", "name")


def status_counts(*, user):
    """Open tickets per status for the list's tabs (one grouped query)."""
    from django.db.models import Count

    rows = visible_tickets(user=user).filter(status__in=OPEN_STATUSES).values_list("status").annotate(n=Count("id"))
    counts = dict(rows.order_by())
    return {s: counts.get(s, 0) for s in (Status.NEW, Status.IN_PROGRESS, Status.WAITING)}


# --- configuration pages ------------------------------------------------------------------

def template_get(*, pk):
    """One template of the tenant in scope (any state) for the builder, or None."""
    return TicketTemplate.objects.select_related("category", "current_version").filter(pk=pk).first()


def classification_rule_list():
    """Every rule of the tenant (active or not), in the order they are tried, with what a row shows."""
    return (
        ClassificationRule.objects.select_related("set_template", "set_category")
        .prefetch_related("add_tags").order_by("order", "id")
    )


def classification_rule_get(*, pk):
    return classification_rule_list().filter(pk=pk).first()


def api_key_list():
    return ApiKey.objects.select_related("created_by").order_by("-is_active", "-created_at", "-id")


def api_key_get(*, pk):
    return ApiKey.objects.filter(pk=pk).first()
