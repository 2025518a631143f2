"""Lead tiers (线索分级 A–D): saving the tenant's four tier rules, grading customers by them — the
total of their open and won opportunities, their source, how long since they were last
contacted — and each tier's follow-up plan (a revisit when a customer enters the tier); and the
last-contact stamp that tickets, workflow actions and revisits leave on a customer.

Grading is a pure function of the customer's figures (`grade_of`), so the same rules give the
same tier whichever way the refresh is reached: a rule saved (the whole tenant), a business event
or a contact (that customer), and the daily pass of the sweep (time moves "last contact" on)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.config_cache import tenant_config
from scrm.models import Customer, CustomerSource, OpportunityStage

from ..models import CustomerGrade, LeadGrade, LeadRule, Revisit, RevisitStatus

RULE_FIELDS = ("is_active", "min_amount", "sources", "contact_within_days", "contact_older_than_days",
               "followup_days", "followup_reason")
BATCH = 2000


@dataclass(frozen=True)
class Figures:
    """What the rules read of one customer."""

    amount: Decimal
    source: str
    last_contact: datetime.datetime | None


def rule_matches(rule, figures: Figures, now: datetime.datetime) -> bool:
    if rule.min_amount is not None and figures.amount < rule.min_amount:
        return False
    if rule.sources and figures.source not in rule.sources:
        return False
    if rule.contact_within_days is not None and (
            figures.last_contact is None
            or figures.last_contact < now - datetime.timedelta(days=rule.contact_within_days)):
        return False
    # Never contacted counts as "no contact for more than N days".
    older = rule.contact_older_than_days
    return older is None or figures.last_contact is None or (
        figures.last_contact < now - datetime.timedelta(days=older))


def grade_of(rules, figures: Figures, now: datetime.datetime):
    """The first (best) active rule that holds, rules ordered A → D; None when none does."""
    for rule in rules:
        if rule.is_active and rule_matches(rule, figures, now):
            return rule
    return None


@transaction.atomic
def lead_rules_save(*, tenant, rules, now=None):
    """Save the tenant's tier rules ({grade: {field: value}}), all or nothing, then regrade its
    customers. Raises ValidationError keyed "<grade>-<field>"."""
    errors = {}
    for grade, fields in rules.items():
        if grade not in LeadGrade.values:
            raise ValidationError({"grade": _("Unknown lead grade %(grade)s.") % {"grade": grade}})
        unknown = set(fields) - set(RULE_FIELDS)
        if unknown:
            raise TypeError(f"lead_rules_save got unknown fields {sorted(unknown)}")
        sources = list(fields.get("sources") or [])
        if any(source not in CustomerSource.values or not source for source in sources):
            errors[f"{grade}-sources"] = _("Choose sources from the list.")
        if fields.get("contact_within_days") is not None and fields.get("contact_older_than_days") is not None:
            errors[f"{grade}-contact_older_than_days"] = _(
                "Give either “contacted within” or “no contact for more than”, not both.")
        amount = fields.get("min_amount")
        if amount is not None and Decimal(amount) < 0:
            errors[f"{grade}-min_amount"] = _("The amount cannot be negative.")
        days = fields.get("followup_days")
        if days is not None and not 0 <= days <= 365:
            errors[f"{grade}-followup_days"] = _("Give a number of days between 0 and 365.")
        if days is not None and not (fields.get("followup_reason") or "").strip():
            errors[f"{grade}-followup_reason"] = _("Say what the follow-up is for.")
    if errors:
        raise ValidationError(errors)
    existing = {rule.grade: rule for rule in LeadRule.objects.filter(grade__in=list(rules))}
    for grade, fields in rules.items():
        rule = existing.get(grade) or LeadRule(tenant=tenant, grade=grade)
        for key, value in fields.items():
            setattr(rule, key, value)
        rule.sources = list(fields.get("sources") or [])
        rule.followup_reason = (rule.followup_reason or "").strip()
        rule.full_clean(exclude=["tenant"])
        rule.save()
    return lead_grades_refresh(tenant=tenant, now=now)


def active_lead_rules(*, tenant):
    """The tenant's active tier rules, A first, from the tenant's cached configuration: every
    customer created by intake is graded, and most tenants have no rule at all, so the read is
    not paid per ticket (LeadRule is config-watched: a save or delete reloads it)."""
    return tenant_config(tenant).get("lead_rules_active", lambda: tuple(
        rule for rule in LeadRule.objects.order_by("grade") if rule.is_active))


def lead_rules(*, tenant=None):
    """The tenant's rules A → D (the one in scope)."""
    return list(LeadRule.objects.order_by("grade"))


def _figures(customers_qs, now):
    """(customer, Figures) for the customers, in batches: opportunities not lost summed, last
    contact the later of the stamp and the latest entry on any of their tickets (comments and
    site visits write one, and reach no seam of their own)."""
    open_amount = Coalesce(Sum("opportunities__amount", filter=~Q(opportunities__stage=OpportunityStage.LOST)),
                           Decimal("0"))
    rows = customers_qs.annotate(open_amount=open_amount).order_by("pk")
    touched = dict(customers_qs.annotate(touched=Max("tickets__events__created_at")).filter(
        touched__isnull=False).values_list("pk", "touched"))
    for customer in rows.iterator(chunk_size=BATCH):
        last = max(filter(None, [customer.last_contact_at, touched.get(customer.pk)]), default=None)
        yield customer, Figures(customer.open_amount, customer.source, last)


def lead_grades_refresh(*, tenant, customers=None, now=None):
    """Grade the tenant's customers (or those given) by its active rules: writes the grade rows
    that changed and, for a customer entering a tier with a follow-up plan, a revisit (unless one
    is already planned). Returns how many customers changed tier. Runs in the caller's
    transaction (no savepoint of its own: scrm's customer_create, whose event calls it, promises
    intake none); the rules' save and the daily pass open one."""
    now = now or timezone.now()
    rules = active_lead_rules(tenant=tenant)
    if not rules:
        return 0
    qs = Customer.objects.all() if customers is None else Customer.objects.filter(
        pk__in=[getattr(c, "pk", c) for c in customers])
    current = {g.customer_id: g for g in CustomerGrade.objects.filter(customer__in=qs.values("pk"))}
    planned = set(Revisit.objects.filter(customer__in=qs.values("pk"), status=RevisitStatus.PLANNED).values_list(
        "customer_id", flat=True))
    new_grades, changed_grades, revisits, stamps = [], [], [], []
    today = timezone.localdate(now)
    for customer, figures in _figures(qs, now):
        if figures.last_contact and figures.last_contact != customer.last_contact_at:
            customer.last_contact_at = figures.last_contact
            stamps.append(customer)
        rule = grade_of(rules, figures, now)
        if rule is None:
            continue
        reason = (_("Tier %(grade)s rule") % {"grade": rule.grade})[:120]
        row = current.get(customer.pk)
        if row is not None and row.grade == rule.grade:
            continue
        if row is None:
            new_grades.append(CustomerGrade(tenant=tenant, customer=customer, grade=rule.grade, reason=reason))
        else:
            row.grade, row.reason, row.updated_at = rule.grade, reason, now
            changed_grades.append(row)
        if rule.followup_days is not None and customer.pk not in planned:
            revisits.append(Revisit(tenant=tenant, customer=customer, owner_id=customer.owner_id,
                                    due_on=today + datetime.timedelta(days=rule.followup_days),
                                    reason=rule.followup_reason[:120] or reason))
            planned.add(customer.pk)
    CustomerGrade.objects.bulk_create(new_grades, batch_size=BATCH)
    CustomerGrade.objects.bulk_update(changed_grades, ["grade", "reason", "updated_at"], batch_size=BATCH)
    Revisit.objects.bulk_create(revisits, batch_size=BATCH)
    Customer.objects.bulk_update(stamps, ["last_contact_at"], batch_size=BATCH)
    return len(new_grades) + len(changed_grades)


def customer_contact_touch(*, customer_id, when=None):
    """Stamp the customer's last contact (only ever forward; one UPDATE). The tier follows at the
    next grading (an event about the customer, or the sweep's daily pass)."""
    if customer_id is None:
        return
    when = when or timezone.now()
    Customer.objects.filter(pk=customer_id).filter(
        Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=when)).update(last_contact_at=when)


def lead_next_step(*, customer, grade_row, revisit):
    """What the customer page says to do next: the planned revisit, else the tier's plan."""
    if revisit is not None:
        return revisit.reason, revisit.due_on
    if grade_row is not None:
        rule = LeadRule.objects.filter(grade=grade_row.grade, is_active=True).first()
        if rule is not None and rule.followup_reason:
            return rule.followup_reason, None
    return None, None


def lead_event_regrade(*, event, tenant, subject, depth=0, **_params):
    """scrm.events subscriber: a customer created or an opportunity's stage or amount changed
    regrades that customer (inside the change's transaction)."""
    customer_id = subject.pk if isinstance(subject, Customer) else getattr(subject, "customer_id", None)
    if customer_id is not None:
        lead_grades_refresh(tenant=tenant, customers=[customer_id])


def lead_rule_tenant_ids() -> list[int]:
    """Ids of the tenants with an active tier rule. Reads across tenants: call it where
    DESIGN.md allows the unscoped escape hatch (automation.tasks.lead_grade_tenants)."""
    return sorted(set(LeadRule.objects.filter(is_active=True).values_list("tenant_id", flat=True)))


def lead_grades_daily(*, tenant_ids, now=None):
    """The sweep's daily pass: regrade every customer of each of `tenant_ids` (the tenants with
    an active rule: time alone moves "last contact" past a rule's days), each in its scope and
    its own transaction. Returns {tenant id: changed}."""
    from scrm.models import Tenant
    from scrm.tenancy import tenant_scope

    changed = {}
    for tenant in Tenant.objects.filter(pk__in=list(tenant_ids)):
        with tenant_scope(tenant), transaction.atomic():
            changed[tenant.pk] = lead_grades_refresh(tenant=tenant, now=now)
    return changed


def contact_on_ticket_created(*, ticket, actor=None, **_):
    """tickets.extensions.on_ticket_created: a ticket for a customer is a contact."""
    customer_contact_touch(customer_id=ticket.customer_id, when=ticket.created_at)


def contact_on_handler_acted(*, ticket, **_):
    """workflow hook handler_acted: a person acting on the customer's ticket is a contact."""
    customer_contact_touch(customer_id=ticket.customer_id)
