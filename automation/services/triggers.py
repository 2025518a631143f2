"""Trigger writes: saving a trigger (validated: its condition, its action's settings, no loop),
recording firings when a business event happens (inside the transaction of the change), running
a firing's action after commit with retries, and the approval a firing waits for."""

from __future__ import annotations

import datetime
import logging
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import event_emit
from scrm.config_cache import tenant_config
from scrm.models import CustomerTier, Membership, OpportunityStage, Role
from scrm.services import customer_update, tag_get_or_create
from tickets.models import Source, TicketTemplate
from tickets.services import ticket_intake
from workflow.conditions import condition_check, condition_eval

from ..models import (
    Action,
    CustomerGrade,
    Decision,
    Event,
    Firing,
    FiringStatus,
    LeadGrade,
    Revisit,
    Trigger,
)
from ..subjects import (
    SUBJECT_FIELDS,
    subject_context,
    subject_customer,
    subject_label,
    subject_load,
    subject_type,
    subject_type_of_event,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (60, 300, 900, 3600)  # after the 1st, 2nd, 3rd, 4th failure
MAX_MAPPING = 30
MAX_MESSAGE = 500
_PLACEHOLDER = re.compile(r"\{([a-z_]{1,20}\.[a-z_]{1,30})\}")
# (event, action) pairs whose action fires the same event on the same subject again.
_LOOPS = {("customer.tier_changed", Action.SET_TIER)}
TICKET_ACTIONS = (Action.CREATE_TICKET, Action.START_APPROVAL)


# --- saving a trigger -------------------------------------------------------------------

def _template_fields(tenant, slug):
    template = TicketTemplate.objects.filter(tenant=tenant, slug=slug, is_active=True).select_related(
        "current_version").first() if isinstance(slug, str) and slug else None
    if template is None or template.current_version is None:
        return None
    return {f["key"] for f in template.current_version.fields}


def trigger_problems(*, tenant, event, condition, action, params):
    """Field → message for everything that keeps the trigger from working (empty when none)."""
    errors: dict[str, str] = {}
    if event not in Event.values:
        return {"event": _("Unknown event.")}
    if action not in Action.values:
        return {"action": _("Unknown action.")}
    fields = SUBJECT_FIELDS[subject_type_of_event(event)]
    try:
        condition_check(condition, fields=set(fields))
    except ValidationError as exc:
        errors["condition"] = " ".join(exc.messages)
    if (event, action) in _LOOPS:
        errors["action"] = _("This action would fire the same trigger again (a loop): choose another event or "
                             "action.")
    if not isinstance(params, dict):
        return {**errors, "params": _("The action's settings are not valid.")}
    if action in TICKET_ACTIONS:
        keys = _template_fields(tenant, params.get("template"))
        if keys is None:
            errors["template"] = _("Choose a published ticket template.")
        mapping = params.get("mapping") or {}
        if not isinstance(mapping, dict) or len(mapping) > MAX_MAPPING:
            errors["mapping"] = _("At most %(n)d field mappings.") % {"n": MAX_MAPPING}
        elif keys is not None:
            lacking = sorted(k for k in mapping if k not in keys)
            unknown = sorted(str(v) for v in mapping.values() if v not in fields)
            if lacking:
                errors["mapping"] = _("The template has no field %(keys)s.") % {"keys": "、".join(lacking)}
            elif unknown:
                errors["mapping"] = _("Unknown source %(keys)s.") % {"keys": "、".join(unknown)}
        bad = [m for m in _PLACEHOLDER.findall(params.get("title") or "") if m not in fields]
        if bad:
            errors["title"] = _("Unknown placeholder {%(name)s}.") % {"name": bad[0]}
    elif action == Action.ADD_TAG:
        if not (params.get("tag") or "").strip() or len(params["tag"]) > 30:
            errors["tag"] = _("Name the tag (at most 30 characters).")
    elif action == Action.SET_TIER:
        if params.get("tier") not in CustomerTier.values:
            errors["tier"] = _("Choose the tier.")
    elif action in (Action.PLAN_REVISIT, Action.SET_LEAD_GRADE):
        days = params.get("days")
        if action == Action.SET_LEAD_GRADE and params.get("grade") not in LeadGrade.values:
            errors["grade"] = _("Choose the lead grade.")
        if days is None and action == Action.SET_LEAD_GRADE:
            pass  # a grade without a follow-up
        elif not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
            errors["days"] = _("Give a number of days between 0 and 365.")
    elif action == Action.NOTIFY:
        role, user_id = params.get("role") or "", params.get("user_id")
        if not role and user_id is None:
            errors["notify_role"] = _("Choose a role or a person to notify.")
        elif role and role not in Role.values:
            errors["notify_role"] = _("Unknown role.")
        elif user_id is not None and not Membership.objects.filter(user_id=user_id, is_active=True).exists():
            errors["notify_user"] = _("Select a valid choice. That choice is not one of the available choices.")
        message = params.get("message")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
            errors["message"] = _("Write the message (at most %(n)d characters).") % {"n": MAX_MESSAGE}
        else:
            bad = [m for m in _PLACEHOLDER.findall(message) if m not in fields]
            if bad:
                errors["message"] = _("Unknown placeholder {%(name)s}.") % {"name": bad[0]}
    return errors


def _trigger_save(trigger, fields):
    for key, value in fields.items():
        setattr(trigger, key, value)
    errors = trigger_problems(tenant=trigger.tenant, event=trigger.event, condition=trigger.condition,
                              action=trigger.action, params=trigger.params)
    if errors:
        raise ValidationError(errors)
    if len(trigger.name.strip()) == 0:
        raise ValidationError({"name": _("Name the trigger.")})
    if Trigger.objects.filter(name=trigger.name).exclude(pk=trigger.pk).exists():
        raise ValidationError({"name": _("A trigger with this name already exists.")})
    trigger.full_clean(exclude=["tenant"])
    trigger.save()
    return trigger


TRIGGER_FIELDS = ("name", "event", "condition", "action", "params", "is_active")


@transaction.atomic
def trigger_create(*, tenant, name, event, action, condition=None, params=None, is_active=True):
    return _trigger_save(Trigger(tenant=tenant), dict(name=name, event=event, condition=condition or {},
                                                      action=action, params=params or {}, is_active=is_active))


@transaction.atomic
def trigger_update(*, trigger, **fields):
    unknown = set(fields) - set(TRIGGER_FIELDS)
    if unknown:
        raise TypeError(f"trigger_update got unknown fields {sorted(unknown)}")
    return _trigger_save(trigger, fields)


# --- recording firings (the scrm.events subscriber) ------------------------------------

def _active_triggers(tenant_id, event):
    """(pk, condition) of the tenant's active triggers on `event`, cached until a trigger changes."""
    return tenant_config(tenant_id).get(f"automation_triggers:{event}", lambda: tuple(
        Trigger.objects.filter(tenant_id=tenant_id, event=event, is_active=True).order_by("pk").values_list(
            "pk", "condition")))


def event_record(*, event, tenant, subject, depth=1, **params):
    """Record a pending firing for every active trigger on `event` whose condition holds on
    `subject`, in the caller's transaction, and run each after commit. A firing that exists
    already (the same trigger, event and subject: a replay, an opportunity won twice, a trigger
    whose action fired its own event) is left alone."""
    triggers = _active_triggers(tenant.pk, event)
    if not triggers:
        return []
    context = subject_context(subject)
    kind, label = subject_type(subject), subject_label(subject)
    recorded = []
    for pk, condition in triggers:
        if not condition_eval(condition, context):
            continue
        try:
            with transaction.atomic():
                firing = Firing.objects.create(tenant=tenant, trigger_id=pk, event=event, subject_type=kind,
                                               subject_id=subject.pk, subject_label=label)
        except IntegrityError:
            continue  # fired before for this subject
        recorded.append(firing)
        _enqueue(firing)
    return recorded


def _enqueue(firing):
    from ..tasks import firing_run_task

    firing_run_task.delay_on_commit(tenant_id=firing.tenant_id, firing_id=firing.pk)


def ticket_closed_relay(*, ticket, **_kw):
    """The workflow's `ticket_closed` hook, relayed as the business event `ticket.closed`."""
    from scrm.events import event_fire

    event_fire("ticket.closed", tenant=ticket.tenant, subject=ticket)


# --- running a firing -------------------------------------------------------------------

def _render(text, context):
    return _PLACEHOLDER.sub(lambda m: str(context.get(m.group(1)) or ""), text or "")


def _field_value(value, field_type):
    if value in (None, ""):
        return None
    if field_type == "address":
        return {"text": str(value)}
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def _ticket_from(*, trigger, subject, context):
    params = trigger.params
    template = TicketTemplate.objects.select_related("current_version").filter(
        slug=params["template"], is_active=True, current_version__isnull=False).first()
    version = template.current_version if template is not None else None
    if template is None or version is None:
        raise ValidationError(_("The template “%(slug)s” is no longer published.") % {"slug": params["template"]})
    types = {f["key"]: f["type"] for f in version.fields}
    data = {}
    for key, source in (params.get("mapping") or {}).items():
        value = _field_value(context.get(source), types.get(key))
        if value is not None:
            data[key] = value
    customer = subject_customer(subject)
    opportunity = subject if subject_type(subject) == "opportunity" else getattr(subject, "opportunity", None)
    description = _render(params.get("description") or "", context) or _("Created by the trigger “%(name)s”.") % {
        "name": trigger.name}
    return ticket_intake(
        tenant=trigger.tenant, source=Source.STAFF, template=template, data=data, audience="staff", partial=True,
        title=_render(params.get("title") or "", context)[:120], description=description, customer=customer,
        opportunity=opportunity, store=customer.store if customer is not None else None,
        priority=params.get("priority") or None,
    )


def _act(firing, trigger, subject):
    """Run the trigger's action; returns the outcome line (and sets firing.ticket/decision)."""
    context = subject_context(subject)
    action, params = trigger.action, trigger.params
    customer = subject_customer(subject)
    if action in TICKET_ACTIONS:
        ticket = _ticket_from(trigger=trigger, subject=subject, context=context)
        firing.ticket = ticket
        if action == Action.START_APPROVAL:
            firing.decision = Decision.PENDING
            return _("Approval %(number)s started.") % {"number": ticket.number}
        return _("Ticket %(number)s created.") % {"number": ticket.number}
    if action == Action.NOTIFY:
        members = Membership.objects.filter(is_active=True).select_related("user")
        if params.get("user_id") is not None:
            members = members.filter(user_id=params["user_id"])
        else:
            members = members.filter(role=params.get("role"))
        users = [m.user for m in members.order_by("user_id") if m.user.is_active]
        if not users:
            raise ValidationError(_("Nobody to notify: no active member has that role."))
        event_emit(tenant=trigger.tenant, event="automation_notice", users=users, occurrence=f"firing{firing.pk}",
                   context={"title": trigger.name, "body": _render(params["message"], context)})
        return _("%(n)d people notified.") % {"n": len(users)}
    if customer is None:
        raise ValidationError(_("The subject has no customer."))
    if action == Action.ADD_TAG:
        tag = tag_get_or_create(tenant=trigger.tenant, name=params["tag"].strip())
        customer_update(customer=customer, tags=[*customer.tags.all(), tag])
        return _("Tag “%(tag)s” added to %(customer)s.") % {"tag": tag.name, "customer": customer.name}
    if action == Action.SET_TIER:
        customer_update(customer=customer, tier=params["tier"])
        return _("%(customer)s is now %(tier)s.") % {"customer": customer.name,
                                                      "tier": CustomerTier(params["tier"]).label}
    revisit_days = params.get("days")
    line = ""
    if action == Action.SET_LEAD_GRADE:
        # A customer's grade is the best any rule gave it (A before D): several deals graded in
        # any order end on the same grade, whichever firing ran last.
        current = CustomerGrade.objects.filter(customer=customer).first()
        if current is None:
            CustomerGrade.objects.create(tenant=trigger.tenant, customer=customer, grade=params["grade"],
                                         reason=trigger.name[:120])
        elif params["grade"] < current.grade:
            current.grade, current.reason = params["grade"], trigger.name[:120]
            current.save(update_fields=["grade", "reason", "updated_at"])
        line = _("%(customer)s graded %(grade)s.") % {"customer": customer.name, "grade": params["grade"]}
        if revisit_days is None:
            return line
    due = timezone.localdate() + datetime.timedelta(days=revisit_days or 0)
    Revisit.objects.create(
        tenant=trigger.tenant, customer=customer, firing=firing, due_on=due,
        ticket=subject if subject_type(subject) == "ticket" else None,
        opportunity=subject if subject_type(subject) == "opportunity" else None,
        reason=(params.get("reason") or trigger.name)[:120], owner=customer.owner,
    )
    return " ".join(filter(None, [line, _("Revisit planned for %(date)s.") % {"date": due.isoformat()}]))


def firing_run(*, firing_id):
    """Run one firing's action, once: done with its outcome; a refusal (ValidationError: the
    template lost a field, the subject is gone) gives up at once with the message; any other
    error is counted and retried later with backoff, up to MAX_ATTEMPTS. Returns the firing."""
    with transaction.atomic():
        firing = Firing.objects.select_for_update().select_related("trigger", "tenant").filter(pk=firing_id).first()
        if firing is None or firing.status in (FiringStatus.DONE, FiringStatus.DEAD):
            return firing
        trigger = firing.trigger
        trigger.tenant = firing.tenant
        now = timezone.now()
        firing.attempts += 1
        try:
            with transaction.atomic():
                subject = subject_load(firing.subject_type, firing.subject_id)
                if subject is None:
                    raise ValidationError(_("The subject no longer exists."))
                firing.outcome = str(_act(firing, trigger, subject))[:500]
        except ValidationError as exc:
            firing.status, firing.next_attempt_at = FiringStatus.DEAD, None
            firing.outcome = " ".join(exc.messages)[:500]
            firing.decision = Decision.NONE
        except Exception as exc:  # retried: the outcome says what went wrong
            logger.exception("automation firing %s failed", firing_id)
            firing.ticket, firing.decision = None, Decision.NONE
            firing.outcome = (_("Attempt %(n)d failed: %(error)s") % {"n": firing.attempts, "error": exc})[:500]
            if firing.attempts >= MAX_ATTEMPTS:
                firing.status, firing.next_attempt_at = FiringStatus.DEAD, None
            else:
                firing.status = FiringStatus.FAILED
                delay = BACKOFF_SECONDS[min(firing.attempts, len(BACKOFF_SECONDS)) - 1]
                firing.next_attempt_at = now + datetime.timedelta(seconds=delay)
        else:
            firing.status, firing.done_at, firing.next_attempt_at = FiringStatus.DONE, now, None
        firing.save(update_fields=["status", "attempts", "outcome", "ticket", "decision", "done_at",
                                   "next_attempt_at"])
        return firing


def firing_retry(*, firing):
    """A person asks for another try now (a failed or given-up firing)."""
    with transaction.atomic():
        updated = Firing.objects.filter(pk=firing.pk, status__in=[FiringStatus.FAILED, FiringStatus.DEAD]).update(
            status=FiringStatus.FAILED, next_attempt_at=timezone.now(), attempts=0)
        if not updated:
            raise ValidationError(_("Only a failed firing can be retried."))
        _enqueue(firing)


def firings_due(*, now=None, limit=500):
    """(tenant id, firing id) of failed firings whose next attempt is due (the beat sweep)."""
    now = now or timezone.now()
    return list(Firing.objects.filter(status=FiringStatus.FAILED, next_attempt_at__lte=now).order_by(
        "next_attempt_at").values_list("tenant_id", "pk")[:limit])


# --- approvals --------------------------------------------------------------------------

def approval_decide_on_task(*, ticket, task, action, **_kw):
    """The workflow's `task_completed` hook: an approve or reject on an approval ticket that a
    trigger started records the decision on its firing."""
    if action not in ("approve", "reject"):
        return
    decision = Decision.APPROVED if action == "approve" else Decision.REJECTED
    Firing.objects.filter(ticket_id=ticket.pk, decision=Decision.PENDING).update(decision=decision)


def opportunity_won_guard(*, opportunity, stage, **_kw):
    """`opportunity.stage_change` guard: no 签约 while an approval a trigger started for this
    opportunity is missing, waiting or rejected."""
    if stage != OpportunityStage.WON or opportunity.pk is None:
        return
    blocking = (Firing.objects.filter(subject_type="opportunity", subject_id=opportunity.pk,
                                      trigger__action=Action.START_APPROVAL)
                .exclude(decision=Decision.APPROVED).select_related("ticket").first())
    if blocking is None:
        return
    number = blocking.ticket.number if blocking.ticket is not None else "—"
    if blocking.decision == Decision.REJECTED:
        message = _("The approval %(number)s was rejected: this opportunity cannot be marked won.")
    else:
        message = _("This opportunity needs an approval first (%(number)s, still waiting): it can be marked won "
                    "once approved.")
    raise ValidationError({"stage": message % {"number": number}})

