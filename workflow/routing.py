"""Who handles a node: handler rule kinds behind one interface. A rule is data ({"rule": "role",
"role": "engineer", "scope": "store"}); each kind is a `HandlerRuleKind` registered here with
`@handler_rule_register`, and says everything the rest of the product needs about it:

- `name` (the "rule" value) and `label` (translatable) — the designer lists every registered kind;
- `form_class` — a Django form of its parameters, whose field names are the rule's keys; the
  designer renders it, and `problems()` binds the rule to it, so publishing checks a rule with
  the same form the designer uses (a person of another tenant is simply not a valid choice);
- `summary()` — one line for the designer's lists;
- `choose()` — the users it picks together with the reasons: every candidate considered, and why
  each was picked or passed over (`HandlerChoice`). Reasons are JSON (the engine stores them on the
  task) with a code and parameters, so the ticket page renders them in the reader's language.

Smart dispatch will be one more kind, without touching the engine or the designer."""

from dataclasses import dataclass, field

from django import forms
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

from scrm.forms import StaffChoiceField, staff_users
from scrm.models import Membership, RegionUserObjectPermission, Role, StaffProfile, StoreUserObjectPermission

RULES = {}  # kind name -> HandlerRuleKind instance, in registration order (the designer's order)
MAX_REASONS = 20  # candidates listed per choice; the summary still counts them all


@dataclass
class HandlerContext:
    ticket: object
    previous: object = None  # the user who handled the previous human node


@dataclass
class HandlerChoice:
    """What a rule picked (`users`, best first), the candidates it weighed and why (`reasons`:
    JSON-ready dicts with user_id, name, picked, rule, code, params and `why` in the active
    language), and one line about the whole choice (`summary`)."""

    users: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    summary: str = ""


def user_name(user):
    return (user.first_name or user.username) if user is not None else ""


class HandlerRuleKind:
    """One kind of handler rule. Subclass it, set `name`, `label`, `form_class` (None when the
    kind has no parameters) and `reason_texts` (code -> translatable text with %(param)s
    placeholders), implement `choose()`, and register it with `@handler_rule_register`."""

    name = ""
    label = ""
    form_class = None
    reason_texts = {}

    # --- parameters -----------------------------------------------------------------------

    def form_data(self, rule):
        """The rule's parameters as the parameter form's data (field names are the rule's keys)."""
        return {key: value for key, value in rule.items() if key != "rule"}

    def params(self, cleaned_data):
        """The rule's parameters from the form's cleaned data: objects become their ids, empty
        values are left out."""
        params = {}
        for key, value in cleaned_data.items():
            if isinstance(value, models.Model):
                value = value.pk
            if value not in (None, "", [], {}):
                params[key] = value
        return params

    def problems(self, rule):
        """What is wrong with the rule's parameters, as messages (empty: nothing)."""
        if self.form_class is None:
            return [_("“%(key)s” is not a setting of this rule.") % {"key": key}
                    for key in sorted(str(k) for k in rule if k != "rule")]
        form = self.form_class(self.form_data(rule))
        found = [_("“%(key)s” is not a setting of this rule.") % {"key": key}
                 for key in sorted(str(k) for k in rule if k != "rule" and k not in form.fields)]
        if not form.is_valid():
            for name, errors in form.errors.items():
                label = form.fields[name].label if name in form.fields else ""
                found += [f"{label}: {error}" if label else str(error) for error in errors]
        return found

    def summary(self, rule, users=None):
        """One line saying whom the rule picks (`users`: the users the graph names, by id)."""
        return str(self.label)

    # --- choosing -------------------------------------------------------------------------

    def choose(self, rule, ctx, *, many):
        """A HandlerChoice: every candidate (or, with `many`, all of them: a countersign) picked."""
        raise NotImplementedError

    def reason(self, user, code, *, picked, user_id=None, **params):
        reason = {"user_id": user.pk if user is not None else user_id, "name": user_name(user), "picked": picked,
                  "rule": self.name, "code": code, "params": params}
        reason["why"] = self.reason_why(reason)
        return reason

    def reason_why(self, reason):
        """The reason in the active language (from its code and parameters)."""
        text = self.reason_texts.get(reason.get("code"))
        if text is None:
            return ""
        try:
            return str(text % (reason.get("params") or {}))
        except (KeyError, TypeError, ValueError):
            return ""


def handler_rule_register(cls):
    """Class decorator: make a HandlerRuleKind available to the engine, the designer and publishing."""
    if not cls.name:
        raise ValueError("A handler rule kind needs a name.")
    RULES[cls.name] = cls()
    return cls


def rule_kind(rule):
    """The registered kind of a rule (a dict with "rule"), or None."""
    if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str):
        return None
    return RULES.get(rule["rule"])


def rule_summary(rule, users=None):
    """One line saying who a handler rule picks, for lists and the diagram's side panel."""
    kind = rule_kind(rule)
    return kind.summary(rule, users) if kind is not None else ""


def reasons_display(reasons):
    """Stored reasons as rows for a page: name, picked, and why in the reader's language."""
    rows = []
    for reason in reasons or []:
        if not isinstance(reason, dict):
            continue
        kind = RULES.get(reason.get("rule"))
        why = kind.reason_why(reason) if kind is not None else ""
        rows.append({"name": reason.get("name") or (f"#{reason['user_id']}" if reason.get("user_id") else "—"),
                     "picked": bool(reason.get("picked")), "why": why or reason.get("why") or ""})
    return rows


def handlers_choose(rule, ctx, *, many=False):
    """The user(s) a rule picks — the best one, or every candidate (countersign) — with the reasons."""
    kind = rule_kind(rule)
    if kind is None:
        return HandlerChoice(summary=_("No handler rule: the task goes to the exception pool."))
    choice = kind.choose(rule, ctx, many=many)
    choice.users = [u for u in choice.users if u is not None]
    if not many:
        choice.users = choice.users[:1]
    return choice


def handlers_resolve(rule, ctx, *, many=False):
    """The user(s) a rule picks: the best one, or every candidate (countersign)."""
    return handlers_choose(rule, ctx, many=many).users


# --- the kinds that ship ----------------------------------------------------------------------

def _members(role=None):
    qs = Membership.objects.filter(is_active=True)
    return qs.filter(role=role) if role else qs


class UserRuleForm(forms.Form):
    user_id = StaffChoiceField(queryset=get_user_model().objects.none(), label=gettext_lazy("Person"),
                               error_messages={"required": gettext_lazy("Choose the person."),
                                               "invalid_choice": gettext_lazy(
                                                   "Choose a member of staff of this company.")})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user_id"].queryset = staff_users()


@handler_rule_register
class NamedUserRule(HandlerRuleKind):
    name = "user"
    label = gettext_lazy("A named person")
    form_class = UserRuleForm
    reason_texts = {"named": gettext_lazy("Named in the rule."),
                    "gone": gettext_lazy("Named in the rule, but no longer a member of staff.")}

    def summary(self, rule, users=None):
        user = (users or {}).get(rule.get("user_id"))
        return _("Person: %(name)s") % {"name": user_name(user) if user else "?"}

    def choose(self, rule, ctx, *, many):
        user_id = rule.get("user_id")
        user = get_user_model().objects.filter(pk=user_id, memberships__in=_members(), is_active=True).first() \
            if isinstance(user_id, int) and not isinstance(user_id, bool) else None
        if user is None:
            return HandlerChoice(reasons=[self.reason(None, "gone", picked=False, user_id=user_id)],
                                 summary=_("The person the rule names is no longer a member of staff."))
        return HandlerChoice(users=[user], reasons=[self.reason(user, "named", picked=True)],
                             summary=_("Person: %(name)s") % {"name": user_name(user)})


SCOPE_LABELS = {"store": gettext_lazy("in the ticket's store"), "region": gettext_lazy("in the ticket's region"),
                "tenant": gettext_lazy("anywhere in the company")}


class RoleRuleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=[("", "—"), *Role.choices],
                             error_messages={"required": gettext_lazy("Choose the role."),
                                             "invalid_choice": gettext_lazy("Unknown role “%(value)s”.")})
    scope = forms.ChoiceField(label=gettext_lazy("Where"), required=False, initial="store",
                              choices=list(SCOPE_LABELS.items()),
                              error_messages={"invalid_choice": gettext_lazy(
                                  "Unknown place “%(value)s”: use store, region or tenant.")})


@handler_rule_register
class RoleRule(HandlerRuleKind):
    """Members with the role within the ticket's store (home store or store grant), its region
    (home store in the region or region grant), or the whole tenant; the one with the fewest
    open tasks is picked (then the earliest account)."""

    name = "role"
    label = gettext_lazy("A role")
    form_class = RoleRuleForm
    reason_texts = {
        "only": gettext_lazy("%(where)s; the only candidate."),
        "least": ngettext_lazy("%(where)s; %(load)d open task, the fewest.",
                               "%(where)s; %(load)d open tasks, the fewest.", "load"),
        "all": gettext_lazy("%(where)s; a countersign goes to everyone the rule matches."),
        "tie": ngettext_lazy("%(where)s; %(load)d open task, as few as the one picked (ties go to the earlier "
                             "account).",
                             "%(where)s; %(load)d open tasks, as few as the one picked (ties go to the earlier "
                             "account).", "load"),
        "busier": ngettext_lazy("%(where)s; %(load)d open task, more than the one picked.",
                                "%(where)s; %(load)d open tasks, more than the one picked.", "load"),
        "out_store": gettext_lazy("Has the role, but works neither in the ticket's store %(place)s nor has a "
                                  "grant for it."),
        "out_region": gettext_lazy("Has the role, but works neither in the ticket's region %(place)s nor has a "
                                   "grant for it."),
    }
    where_texts = {"store": gettext_lazy("Works in the ticket's store %(place)s"),
                   "region": gettext_lazy("Covers the ticket's region %(place)s"),
                   "tenant": gettext_lazy("Has the role (anywhere in the company)")}

    def params(self, cleaned_data):
        return {"role": cleaned_data["role"], "scope": cleaned_data.get("scope") or "store"}

    def summary(self, rule, users=None):
        role = dict(Role.choices).get(rule.get("role"), rule.get("role"))
        return f"{role} · {SCOPE_LABELS.get(rule.get('scope', 'store'), '')}"

    def reason_why(self, reason):
        params = dict(reason.get("params") or {})
        where = self.where_texts.get(params.get("where"))
        if where is not None:
            params["where"] = str(where) % {"place": params.get("place", "")}
        text = self.reason_texts.get(reason.get("code"))
        try:
            return str(text % params) if text is not None else ""
        except (KeyError, TypeError, ValueError):
            return ""

    def choose(self, rule, ctx, *, many):
        ticket, scope = ctx.ticket, rule.get("scope", "store")
        members = get_user_model().objects.filter(memberships__in=_members(rule.get("role")), is_active=True)
        where, place, in_scope = "tenant", "", members
        if scope == "store" and ticket.store_id:
            where, place = "store", ticket.store.name
            in_scope = members.filter(
                Q(pk__in=StaffProfile.objects.filter(home_store_id=ticket.store_id).values("user_id"))
                | Q(pk__in=StoreUserObjectPermission.objects.filter(content_object_id=ticket.store_id)
                    .values("user_id")))
        elif scope in ("store", "region") and ticket.region_id:
            where, place = "region", ticket.region.name
            in_scope = members.filter(
                Q(pk__in=StaffProfile.objects.filter(home_store__region_id=ticket.region_id).values("user_id"))
                | Q(pk__in=RegionUserObjectPermission.objects.filter(content_object_id=ticket.region_id)
                    .values("user_id")))
        # Their open tasks come with them (the Workload roll-up's row, one index probe each).
        candidates = list(in_scope.annotate(open_tasks_now=self._load_of()).distinct())
        # One candidate: no ranking to explain.
        load = {u.pk: u.open_tasks_now for u in candidates} if len(candidates) > 1 else {}
        candidates.sort(key=lambda u: (load.get(u.pk, 0), u.pk))
        picked = candidates if many else candidates[:1]
        reasons = []
        for user in candidates[:MAX_REASONS]:
            n = load.get(user.pk, 0)
            if many:
                code = "all"
            elif user in picked:
                code = "only" if len(candidates) == 1 else "least"
            else:
                code = "tie" if n == load.get(picked[0].pk, 0) else "busier"
            extra = {"load": n} if len(candidates) > 1 else {}
            reasons.append(self.reason(user, code, picked=user in picked, where=where, place=place, **extra))
        if where != "tenant":
            outside = members.exclude(pk__in=[u.pk for u in candidates]).distinct().order_by("pk")[:MAX_REASONS // 2]
            reasons += [self.reason(user, f"out_{where}", picked=False, place=place) for user in outside]
        line = self.summary(rule)
        if where != scope and scope != "tenant":
            line += " " + (_("(the ticket has no store: its region counts)") if where == "region"
                           else _("(the ticket has no store or region: the whole company counts)"))
        if not candidates:
            summary = _("%(rule)s: nobody matches; the task goes to the exception pool.") % {"rule": line}
        else:
            summary = ngettext("%(rule)s: %(n)d candidate.", "%(rule)s: %(n)d candidates.", len(candidates)) % {
                "rule": line, "n": len(candidates)}
        return HandlerChoice(users=picked, reasons=reasons, summary=summary)

    @staticmethod
    def _load_of():
        """A candidate's open tasks: their row of the Workload roll-up (0 without one), whatever
        their backlog."""
        from .models import Workload

        return Coalesce(Subquery(Workload.objects.filter(user_id=OuterRef("pk")).values("open_tasks")[:1]), 0)


@handler_rule_register
class CustomerOwnerRule(HandlerRuleKind):
    name = "customer_owner"
    label = gettext_lazy("The customer's owner")
    reason_texts = {"owner": gettext_lazy("Owns the customer %(customer)s.")}

    def choose(self, rule, ctx, *, many):
        customer = ctx.ticket.customer
        if customer is None:
            return HandlerChoice(summary=_("The ticket has no customer, so no customer owner."))
        if not customer.owner_id:
            return HandlerChoice(summary=_("The customer %(customer)s has no owner.") % {"customer": customer.name})
        owner = customer.owner
        return HandlerChoice(users=[owner], reasons=[self.reason(owner, "owner", picked=True, customer=customer.name)],
                             summary=_("The owner of %(customer)s.") % {"customer": customer.name})


@handler_rule_register
class PreviousHandlerRule(HandlerRuleKind):
    name = "previous"
    label = gettext_lazy("The previous node's handler")
    reason_texts = {"previous": gettext_lazy("Handled the previous node.")}

    def choose(self, rule, ctx, *, many):
        if ctx.previous is None:
            return HandlerChoice(summary=_("No earlier node was handled by a person."))
        return HandlerChoice(users=[ctx.previous], reasons=[self.reason(ctx.previous, "previous", picked=True)],
                             summary=_("The handler of the previous node."))


@handler_rule_register
class AssigneeRule(HandlerRuleKind):
    name = "assignee"
    label = gettext_lazy("The ticket's assignee")
    reason_texts = {"assignee": gettext_lazy("The ticket's assignee.")}

    def choose(self, rule, ctx, *, many):
        ticket = ctx.ticket
        if not ticket.assignee_id:
            return HandlerChoice(summary=_("The ticket has no assignee yet."))
        return HandlerChoice(users=[ticket.assignee], reasons=[self.reason(ticket.assignee, "assignee", picked=True)],
                             summary=_("The ticket's assignee."))
