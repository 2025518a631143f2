"""SLA policies, the writes: create, update, delete, export and import (`scrm.sla-policies/1`,
calendars and named people referred to by name, so a file moves between environments), and
`policy_check`, the one validation every path runs. Which policy a ticket falls under is
`policy_match` (cached per tenant: a tenant without policies pays no query at intake)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from notifications.models import ChannelName
from scrm.config_cache import tenant_config
from scrm.models import Membership, Role

from .conditions import condition_check, condition_eval, ticket_context
from .escalation import ESCALATION_ACTIONS, RECIPIENT_KINDS
from .models import BusinessCalendar, SlaPolicy

POLICY_FORMAT = "scrm.sla-policies/1"
MAX_MINUTES = 60 * 24 * 366  # a year of minutes: anything longer is a typing error
MAX_LEVELS = 8
MAX_NODE_LIMITS = 60
LEVEL_KEYS = ("after", "clock", "basis", "until", "to", "role", "user", "channels", "actions")
CLOCKS = ("working", "wall")
BASES = ("created", "node")
UNTILS = ("response", "resolution")
LEVEL_CHANNELS = (ChannelName.WECOM, ChannelName.SMS, ChannelName.EMAIL, ChannelName.INAPP)
POLICY_FIELDS = ("name", "is_active", "position", "condition", "calendar", "response_minutes", "resolution_minutes",
                 "due_soon_percent", "node_limits", "escalations")


def _minutes(value, field, errors, *, required=False):
    if value in (None, ""):
        if required:
            errors.setdefault(field, _("Give a number of minutes."))
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MINUTES:
        errors.setdefault(field, _("Give a whole number of minutes from 1 to %(max)d.") % {"max": MAX_MINUTES})
        return None
    return value


def level_clean(level: Any, number: int) -> dict:
    """One escalation level in normal form, or a ValidationError naming the level."""
    def fail(message):
        return ValidationError(_("Level %(n)d: %(message)s") % {"n": number, "message": message})

    if not isinstance(level, dict) or set(level) - set(LEVEL_KEYS):
        raise fail(_("a level has only these keys: %(keys)s.") % {"keys": ", ".join(LEVEL_KEYS)})
    errors: dict = {}
    after = _minutes(level.get("after"), "after", errors, required=True)
    if errors:
        raise fail(errors["after"])
    clean = {"after": after, "clock": level.get("clock") or "working", "basis": level.get("basis") or "created",
             "until": level.get("until") or "resolution", "to": level.get("to")}
    if clean["clock"] not in CLOCKS or clean["basis"] not in BASES or clean["until"] not in UNTILS:
        raise fail(_("unknown clock, basis or end."))
    if clean["to"] not in RECIPIENT_KINDS:
        raise fail(_("choose whom to notify: the supervisor, the regional manager, a role or a person."))
    if clean["to"] == "role":
        if level.get("role") not in Role.values:
            raise fail(_("choose a role."))
        clean["role"] = level["role"]
    if clean["to"] == "user":
        user_id = level.get("user")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not Membership.objects.filter(
                user_id=user_id, is_active=True).exists():
            raise fail(_("choose a member of staff of this tenant."))
        clean["user"] = user_id
    channels = level.get("channels") or []
    if not isinstance(channels, list) or not channels or any(c not in LEVEL_CHANNELS for c in channels):
        raise fail(_("choose at least one channel (WeChat Work, SMS, email, in-app)."))
    clean["channels"] = list(dict.fromkeys(channels))
    actions = level.get("actions") or []
    if not isinstance(actions, list) or any(a not in ESCALATION_ACTIONS for a in actions):
        raise fail(_("unknown action."))
    clean["actions"] = list(dict.fromkeys(actions))
    return clean


def policy_check(policy: SlaPolicy) -> SlaPolicy:
    """Refuse a policy that cannot work, with messages on its fields; normalise the rest."""
    errors: dict[str, Any] = {}
    policy.name = (policy.name or "").strip()
    if not policy.name:
        errors["name"] = _("Give the policy a name.")
    elif len(policy.name) > 60:
        errors["name"] = _("At most 60 characters.")
    elif SlaPolicy.objects.filter(name=policy.name).exclude(pk=policy.pk).exists():
        errors["name"] = _("A policy with this name already exists.")
    policy.response_minutes = _minutes(policy.response_minutes, "response_minutes", errors)
    policy.resolution_minutes = _minutes(policy.resolution_minutes, "resolution_minutes", errors)
    if policy.response_minutes is None and policy.resolution_minutes is None and not errors:
        errors["response_minutes"] = _("Set a first-response target, a resolution target, or both.")
    if (policy.response_minutes and policy.resolution_minutes
            and policy.response_minutes > policy.resolution_minutes):
        errors["resolution_minutes"] = _("Resolution cannot be due before the first response.")
    percent = policy.due_soon_percent
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 90:
        errors["due_soon_percent"] = _("Give a share from 1 to 90 percent.")
    if isinstance(policy.position, bool) or not isinstance(policy.position, int) or not 0 <= policy.position <= 999:
        errors["position"] = _("Give an order from 0 to 999.")
    try:
        condition_check(policy.condition)
    except ValidationError as exc:
        errors["condition"] = exc.messages
    if policy.calendar_id is not None and not BusinessCalendar.objects.filter(pk=policy.calendar_id).exists():
        errors["calendar"] = _("Select a valid choice. That choice is not one of the available choices.")
    limits = policy.node_limits or {}
    if not isinstance(limits, dict) or len(limits) > MAX_NODE_LIMITS or any(
            not isinstance(k, str) or not k or len(k) > 40 or isinstance(v, bool) or not isinstance(v, int)
            or not 0 < v <= MAX_MINUTES for k, v in limits.items()):
        errors["node_limits"] = _("Node limits are node keys with a whole number of minutes each.")
    levels = policy.escalations or []
    if not isinstance(levels, list) or len(levels) > MAX_LEVELS:
        errors["escalations"] = _("An escalation chain has at most %(n)d levels.") % {"n": MAX_LEVELS}
    else:
        cleaned = []
        try:
            for number, level in enumerate(levels, start=1):
                cleaned.append(level_clean(level, number))
            last: dict[str, tuple[int, int]] = {}
            for number, level in enumerate(cleaned, start=1):
                previous = last.get(level["basis"])
                if previous is not None and level["after"] <= previous[1]:
                    raise ValidationError(_("Level %(n)d fires after %(after)d minutes, no later than level "
                                            "%(m)d (%(before)d minutes): order the chain by time.") % {
                        "n": number, "after": level["after"], "m": previous[0], "before": previous[1]})
                last[level["basis"]] = (number, level["after"])
        except ValidationError as exc:
            errors["escalations"] = exc.messages
        else:
            policy.escalations = cleaned
    if errors:
        raise ValidationError(errors)
    return policy


@transaction.atomic
def sla_policy_create(*, tenant, **fields) -> SlaPolicy:
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"sla_policy_create() got unknown fields {sorted(unknown)}")
    policy = SlaPolicy(tenant=tenant, **fields)
    policy_check(policy)
    policy.save()
    return policy


@transaction.atomic
def sla_policy_update(*, policy: SlaPolicy, **changes) -> SlaPolicy:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"sla_policy_update() got unknown fields {sorted(unknown)}")
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    for field, value in changes.items():
        setattr(policy, field, value)
    policy_check(policy)
    policy.save()
    return policy


@transaction.atomic
def sla_policy_delete(*, policy: SlaPolicy) -> None:
    """Tickets that fell under it keep their deadlines (TicketSla.policy becomes empty)."""
    SlaPolicy.objects.filter(pk=policy.pk).get().delete()


def sla_policy_export() -> dict:
    """Every policy of the tenant in scope, calendars and people by name."""
    users = dict(get_user_model().objects.filter(memberships__is_active=True).values_list("pk", "username"))
    policies = []
    for policy in SlaPolicy.objects.select_related("calendar").order_by("position", "name"):
        levels = []
        for level in policy.escalations:
            level = dict(level)
            if "user" in level:
                level["user"] = users.get(level["user"], "")
            levels.append(level)
        policies.append({
            "name": policy.name, "is_active": policy.is_active, "position": policy.position,
            "condition": policy.condition, "calendar": policy.calendar.name if policy.calendar is not None else None,
            "response_minutes": policy.response_minutes, "resolution_minutes": policy.resolution_minutes,
            "due_soon_percent": policy.due_soon_percent, "node_limits": policy.node_limits, "escalations": levels})
    return {"format": POLICY_FORMAT, "policies": policies}


@transaction.atomic
def sla_policy_import(*, tenant, payload) -> list[SlaPolicy]:
    """Policies from sla_policy_export's format: the policy of the same name is updated, or a
    new one made. All or nothing: one bad policy and none is written."""
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT or not isinstance(
            payload.get("policies"), list):
        raise ValidationError(_("The file does not describe SLA policies."))
    if len(payload["policies"]) > 100:
        raise ValidationError(_("A file holds at most 100 policies."))
    saved = []
    for number, entry in enumerate(payload["policies"], start=1):
        try:
            if not isinstance(entry, dict):
                raise ValidationError(_("not a policy."))
            fields = {k: entry[k] for k in POLICY_FIELDS if k in entry and k != "calendar"}
            calendar_name = entry.get("calendar")
            fields["calendar"] = None
            if calendar_name:
                fields["calendar"] = BusinessCalendar.objects.filter(name=calendar_name).first()
                if fields["calendar"] is None:
                    raise ValidationError(_("no calendar named “%(name)s”.") % {"name": calendar_name})
            levels = []
            for level in fields.get("escalations") or []:
                if isinstance(level, dict) and isinstance(level.get("user"), str):
                    level = dict(level, user=get_user_model().objects.filter(
                        username=level["user"], memberships__is_active=True).values_list("pk", flat=True).first())
                levels.append(level)
            if "escalations" in fields:
                fields["escalations"] = levels
            existing = SlaPolicy.objects.filter(name=str(fields.get("name") or "").strip()).first()
            if existing is not None:
                saved.append(sla_policy_update(policy=existing, **fields))
            else:
                saved.append(sla_policy_create(tenant=tenant, **fields))
        except ValidationError as exc:
            raise ValidationError(_("Policy %(n)d: %(errors)s") % {
                "n": number, "errors": "; ".join(exc.messages)}) from None
    return saved


def policies_active() -> list[SlaPolicy]:
    """The tenant's active policies in order, cached until its configuration changes."""
    return tenant_config().get("sla.policies", lambda: list(
        SlaPolicy.objects.filter(is_active=True).order_by("position", "name")))


def policy_match(ticket) -> SlaPolicy | None:
    """The first active policy whose condition the ticket meets, or None."""
    policies = policies_active()
    if not policies:
        return None
    context = ticket_context(ticket)
    return next((p for p in policies if condition_eval(p.condition, context)), None)
