"""What a ticket (and a party's period) earns: the pure settlement calculator over dataclasses.

No database: the services load rules and inputs into the dataclasses below and store what comes
out. The rules, written down once (README "Settlement"):

* A ticket goes through five phases, each rule kind in one phase, rules in a phase by priority
  (lower first, then id): 1 billing mode (the base: fixed package, per item, hourly, project
  milestones); 2 coefficients multiplying the running amount (region class, altitude above N m);
  3 surcharges, each a percentage of the amount after phase 2, added (night, urgent, weekend,
  work at height) — so two surcharges never compound; 4 distance (base within N km, per km
  beyond); 5 the revenue split among the ticket's roles by weight.
* Exclusive or stackable: within one kind (and one flag for surcharges), if an exclusive rule
  matches it applies alone (the first by priority); otherwise every stackable match applies.
* A rule's `cap` / `minimum` bound what that rule contributes (the base for a billing mode, the
  change it makes for every other kind).
* Amounts stay exact Decimals through the steps and are rounded once, half-up to the fen, at the
  ticket total; a split hands out whole fen by largest remainder (ties by the order of the roles),
  so the parts always sum to the total exactly. Period rules (tiered rebates, first-order and
  target bonuses) round each resulting line once the same way.
* Same inputs, same rules → the same lines, step by step (no clock, no set iteration order).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from workflow.conditions import condition_check, condition_eval

FEN = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")
MAX_MONEY = Decimal("100000000")  # 1亿: above this an amount is a typo, not a price
ALTITUDE_RANGE = (-430, 8900)  # the Dead Sea shore to above Everest's summit, in metres

BILLING_KINDS = ("fixed", "per_item", "hourly", "milestones")
COEFFICIENT_KINDS = ("region_class", "altitude")
SURCHARGE_KINDS = ("surcharge",)
DISTANCE_KINDS = ("distance",)
SPLIT_KINDS = ("split",)
TICKET_KINDS = BILLING_KINDS + COEFFICIENT_KINDS + SURCHARGE_KINDS + DISTANCE_KINDS + SPLIT_KINDS
PERIOD_KINDS = ("rebate", "first_order_bonus", "target_bonus")
RULE_KINDS = TICKET_KINDS + PERIOD_KINDS
SURCHARGE_FLAGS = ("night", "urgent", "weekend", "height_work")
PERIODS = ("month", "quarter")
_PHASE = {**dict.fromkeys(BILLING_KINDS, 1), **dict.fromkeys(COEFFICIENT_KINDS, 2), "surcharge": 3, "distance": 4,
          "split": 5}


def money(value: Decimal) -> Decimal:
    """Half-up to the fen: the one rounding rule."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def _dec(value: Any, name: str, *, minimum: Decimal | None = ZERO, maximum: Decimal | None = MAX_MONEY) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise ValidationError(_("“%(name)s” must be a number.") % {"name": name})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(_("“%(name)s” must be a number.") % {"name": name}) from None
    if not number.is_finite():
        raise ValidationError(_("“%(name)s” must be a number.") % {"name": name})
    if minimum is not None and number < minimum:
        raise ValidationError(_("“%(name)s” cannot be below %(min)s.") % {"name": name, "min": minimum})
    if maximum is not None and number > maximum:
        raise ValidationError(_("“%(name)s” cannot be above %(max)s.") % {"name": name, "max": maximum})
    return number


_SHOWN: dict[Decimal, str] = {}


def _shown(value: Decimal) -> str:
    """A stored figure: whole fen as 0.00, finer exact values without trailing zeros (34.9965).
    Remembered (equal values show the same), since a run shows the same prices a million times."""
    text = _SHOWN.get(value)
    if text is None:
        fen = value.quantize(FEN)
        text = str(fen) if value == fen else format(value.normalize(), "f")
        if len(_SHOWN) < 100_000:
            _SHOWN[value] = text
    return text


def steps_digest(steps: Sequence[Mapping[str, Any]]) -> str:
    """What identifies a breakdown's content (models.SettlementBreakdown): the SHA-256 of its
    JSON with the keys sorted, so the same steps give the same digest whatever order their keys
    were written or read back in (jsonb keeps its own order)."""
    return hashlib.sha256(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class RenderedBreakdown(list):
    """A breakdown (list of step dicts) with its JSON text made once: a run shares one between all
    lines with the same steps, and the breakdown's JSONField encoder (models.BreakdownEncoder)
    writes the text instead of encoding the list again. Its digest is worked out once too, when
    first asked for. Read-only by convention."""

    __slots__ = ("_digest", "json")

    def __init__(self, steps: list[dict[str, Any]]):
        super().__init__(steps)
        self.json = json.dumps(steps)
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = steps_digest(self)
        return self._digest


# --- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A settlement rule as the calculator sees it; `params` are already cleaned (rule_params_clean)."""

    id: int
    name: str
    kind: str
    params: Mapping[str, Any]
    condition: Mapping[str, Any] | None = None
    priority: int = 100
    exclusive: bool = False
    cap: Decimal | None = None
    minimum: Decimal | None = None
    effective_from: date | None = None
    effective_to: date | None = None  # inclusive; a seasonal rate ends by itself after it

    def in_force(self, day: date) -> bool:
        return ((self.effective_from is None or self.effective_from <= day)
                and (self.effective_to is None or day <= self.effective_to))

    @property
    def exclusive_group(self) -> tuple[str, str]:
        return (self.kind, str(self.params.get("flag", "")) if self.kind == "surcharge" else "")


@dataclass(frozen=True)
class Part:
    """A part consumed on the ticket, priced: passed through at cost on a line of its own (role
    “parts”), never multiplied by coefficients or surcharges, never split."""

    sku: str
    name: str
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class TicketInput:
    """Everything a ticket offers to settlement, already typed and validated."""

    ticket_id: int
    closed_on: date
    context: Mapping[str, Any] = field(default_factory=dict)  # workflow.conditions context
    region_class: str = ""
    unit_price: Decimal | None = None  # from the price book, for the service item
    fee: Decimal | None = None  # a fee typed on the ticket overrides per-item pricing
    quantity: Decimal = Decimal("1")
    hours: Decimal | None = None
    flags: frozenset[str] = frozenset()
    altitude_m: int | None = None
    distance_km: Decimal | None = None
    milestones_done: tuple[str, ...] = ()
    parties: tuple[tuple[str, int], ...] = ()  # (role, party id), in the ticket's order
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True)
class Step:
    """One rule applied: the amount before and after it, and the figures it used."""

    rule_id: int | None
    rule: str
    kind: str
    before: Decimal
    after: Decimal
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "rule": self.rule, "kind": self.kind, "before": _shown(self.before),
                "after": _shown(self.after), "detail": {k: _shown(v) if isinstance(v, Decimal) else v
                                                        for k, v in self.detail.items()}}


@dataclass(frozen=True)
class Line:
    """A settlement line: what one party earns in one role, and every step that explains it."""

    party_id: int
    role: str
    amount: Decimal
    kind: str = "ticket"
    steps: tuple[Step, ...] = ()

    def breakdown(self) -> list[dict[str, Any]]:
        return [s.as_json() for s in self.steps]


@dataclass(frozen=True)
class TicketResult:
    total: Decimal  # the work and the parts
    steps: tuple[Step, ...]
    lines: tuple[Line, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartyVolume:
    """A party's business in a rule's period window: the amount and number of its ticket lines,
    and the amount of its first-ever order when that order falls inside the window."""

    party_id: int
    party_kind: str
    amount: Decimal
    count: int
    first_order_amount: Decimal | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


# --- rule validation ---------------------------------------------------------------------------

def _tiers_clean(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw or len(raw) > 20:
        raise ValidationError(_("Give between 1 and 20 rebate tiers."))
    tiers, last = [], None
    for i, tier in enumerate(raw):
        if not isinstance(tier, Mapping):
            raise ValidationError(_("Each rebate tier needs “from” and “percent”."))
        start = _dec(tier.get("from"), _("tier %(n)s from") % {"n": i + 1})
        pct = _dec(tier.get("percent"), _("tier %(n)s percent") % {"n": i + 1}, maximum=HUNDRED)
        if last is not None and start <= last:
            raise ValidationError(_("Rebate tiers must be in ascending order of “from”, each above the one before."))
        if last is None and start != ZERO:
            raise ValidationError(_("The first rebate tier must start from 0."))
        last = start
        tiers.append({"from": str(start), "percent": str(pct)})
    return tiers


def rule_params_clean(kind: str, params: Any) -> dict[str, Any]:
    """The rule's numbers checked and normalised (numbers as strings), or a ValidationError."""
    if kind not in RULE_KINDS:
        raise ValidationError(_("Unknown rule kind “%(kind)s”.") % {"kind": kind})
    if not isinstance(params, Mapping):
        raise ValidationError(_("The rule's parameters must be an object."))
    p = params
    if kind == "fixed":
        return {"amount": str(_dec(p.get("amount"), _("amount")))}
    if kind == "per_item":
        return {}
    if kind == "hourly":
        return {"rate": str(_dec(p.get("rate"), _("hourly rate")))}
    if kind == "milestones":
        items = p.get("milestones")
        if not isinstance(items, list) or not items or len(items) > 20:
            raise ValidationError(_("Give between 1 and 20 milestones."))
        out, names, total = [], set(), ZERO
        for m in items:
            name = str((m or {}).get("name", "")).strip() if isinstance(m, Mapping) else ""
            if not name or len(name) > 40 or name in names:
                raise ValidationError(_("Each milestone needs a unique name of at most 40 characters."))
            share = _dec(m.get("share"), _("share of %(name)s") % {"name": name}, maximum=HUNDRED)
            names.add(name)
            total += share
            out.append({"name": name, "share": str(share)})
        if total != HUNDRED:
            raise ValidationError(_("Milestone shares must add up to 100%% (they add up to %(total)s%%).")
                                  % {"total": total})
        return {"milestones": out}
    if kind == "region_class":
        coef = p.get("coefficients")
        if not isinstance(coef, Mapping) or not coef or set(coef) - {"A", "B", "C"}:
            raise ValidationError(_("Give a coefficient for region classes A, B and/or C."))
        return {"coefficients": {k: str(_dec(v, _("class %(c)s") % {"c": k}, maximum=Decimal(10)))
                                 for k, v in sorted(coef.items())}}
    if kind == "altitude":
        above = _dec(p.get("above_m"), _("altitude"), minimum=Decimal(ALTITUDE_RANGE[0]),
                     maximum=Decimal(ALTITUDE_RANGE[1]))
        return {"above_m": int(above), "multiplier": str(_dec(p.get("multiplier"), _("multiplier"),
                                                              maximum=Decimal(10)))}
    if kind == "surcharge":
        if p.get("flag") not in SURCHARGE_FLAGS:
            raise ValidationError(_("Choose what the surcharge is for: night, urgent, weekend or work at height."))
        return {"flag": p["flag"], "percent": str(_dec(p.get("percent"), _("percent"), maximum=Decimal(1000)))}
    if kind == "distance":
        return {"base_km": str(_dec(p.get("base_km"), _("base distance"), maximum=Decimal(10000))),
                "base_amount": str(_dec(p.get("base_amount", "0"), _("base amount"))),
                "per_km": str(_dec(p.get("per_km"), _("price per km"), maximum=Decimal(1000)))}
    if kind == "split":
        roles = p.get("roles")
        if not isinstance(roles, list) or not roles or len(roles) > 10:
            raise ValidationError(_("Give between 1 and 10 roles to split among."))
        out, seen, total = [], set(), ZERO
        for r in roles:
            role = str((r or {}).get("role", "")).strip() if isinstance(r, Mapping) else ""
            if not role or len(role) > 30 or role in seen:
                raise ValidationError(_("Each role in a split needs a unique name of at most 30 characters."))
            weight = _dec(r.get("weight"), _("weight of %(role)s") % {"role": role}, maximum=Decimal(1000))
            seen.add(role)
            total += weight
            out.append({"role": role, "weight": str(weight)})
        if total <= ZERO:
            raise ValidationError(_("The split's weights add up to zero: give at least one role a weight."))
        return {"roles": out}
    period = p.get("period", "month")
    if period not in PERIODS:
        raise ValidationError(_("The period is a month or a quarter."))
    party_kind = str(p.get("party_kind", "") or "")[:20]
    if kind == "rebate":
        basis, mode = p.get("basis", "amount"), p.get("mode")
        if basis not in ("amount", "count"):
            raise ValidationError(_("A rebate is over the amount or the number of tickets."))
        if mode not in ("retroactive", "marginal"):
            raise ValidationError(_("Choose retroactive (the whole volume at the tier reached) or marginal "
                                    "(each slice at its own tier's rate)."))
        if basis == "count" and mode == "marginal":
            raise ValidationError(_("A rebate over the number of tickets can only be retroactive."))
        return {"period": period, "party_kind": party_kind, "basis": basis, "mode": mode,
                "tiers": _tiers_clean(p.get("tiers"))}
    if kind == "first_order_bonus":
        return {"period": period, "party_kind": party_kind, "threshold": str(_dec(p.get("threshold"), _("threshold"))),
                "percent": str(_dec(p.get("percent"), _("percent"), maximum=HUNDRED))}
    return {"period": period, "party_kind": party_kind, "target": str(_dec(p.get("target"), _("target"))),
            "percent": str(_dec(p.get("percent"), _("percent"), maximum=HUNDRED))}


def rule_check(rule: Rule) -> None:
    """Params, condition and bounds of one rule (raises ValidationError)."""
    rule_params_clean(rule.kind, rule.params)
    condition_check(rule.condition)
    if rule.cap is not None and rule.minimum is not None and rule.minimum > rule.cap:
        raise ValidationError(_("The minimum cannot be above the cap."))
    if rule.effective_from and rule.effective_to and rule.effective_to < rule.effective_from:
        raise ValidationError(_("The rule cannot end before it starts."))


def exclusive_overlaps(rule: Rule, others: Sequence[Rule]) -> list[Rule]:
    """Exclusive rules of the same kind (and flag) in force on a common day: which would win is
    ambiguous, so the second one is refused."""
    if not rule.exclusive:
        return []
    far_past, far_future = date.min, date.max
    start, end = rule.effective_from or far_past, rule.effective_to or far_future
    return [o for o in others if o.id != rule.id and o.exclusive and o.exclusive_group == rule.exclusive_group
            and (o.effective_from or far_past) <= end and start <= (o.effective_to or far_future)]


# --- ticket -------------------------------------------------------------------------------------

def _bound(rule: Rule, amount: Decimal) -> tuple[Decimal, str]:
    if rule.cap is not None and amount > rule.cap:
        return rule.cap, "cap"
    if rule.minimum is not None and amount < rule.minimum:
        return rule.minimum, "minimum"
    return amount, ""


class RuleBook:
    """The rules prepared once for many tickets (a run): the ticket rules in priority order, and
    the set in force on each day remembered, so a ticket only evaluates the conditions."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = tuple(rules)
        self._ticket = sorted((r for r in self.rules if r.kind in TICKET_KINDS), key=lambda r: (r.priority, r.id))
        self._by_day: dict[date, tuple[Rule, ...]] = {}
        self._chosen_by_day: dict[date, tuple[Rule, ...]] = {}
        # Identical inputs settle identically: a run remembers the work's steps per distinct input
        # (see ticket_lines), bounded so a run of all-different tickets does not grow without end.
        self._memo: dict[tuple[Any, ...], tuple[_Core, list[dict[str, Any]]]] = {}
        self._split_memo: dict[tuple[Any, ...], list[tuple[str, Decimal, list[dict[str, Any]]]]] = {}
        # Without a conditional ticket rule no ticket's context is read: a run skips building it.
        self.needs_context = any(r.condition for r in self._ticket)

    def on(self, day: date) -> tuple[Rule, ...]:
        found = self._by_day.get(day)
        if found is None:
            found = self._by_day[day] = tuple(r for r in self._ticket if r.in_force(day))
        return found

    def chosen(self, t: TicketInput) -> tuple[Rule, ...]:
        """The rules that apply to `t`, in application order (`_select`); without conditions
        they depend on the day alone, so each day's are worked out once."""
        if self.needs_context:
            return tuple(_select(self, t.closed_on, t.context))
        found = self._chosen_by_day.get(t.closed_on)
        if found is None:
            found = self._chosen_by_day[t.closed_on] = tuple(_select(self, t.closed_on, t.context))
        return found


def _select(book: RuleBook, day: date, context: Mapping[str, Any]) -> list[Rule]:
    """Ticket rules in force and matching, exclusivity applied, in application order: in each
    group the first exclusive match (by priority) applies alone, else every match applies."""
    matching = [r for r in book.on(day) if not r.condition or condition_eval(r.condition, context)]
    winner: dict[tuple[str, str], Rule] = {}
    for r in matching:
        if r.exclusive:
            winner.setdefault(r.exclusive_group, r)
    chosen, groups_done = [], set()
    for r in matching:
        group = r.exclusive_group
        if group in groups_done:
            continue
        if group in winner:
            chosen.append(winner[group])
            groups_done.add(group)
        else:
            chosen.append(r)
    return sorted(chosen, key=lambda r: (_PHASE[r.kind], r.priority, r.id))


def split_amount(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` (whole fen) shared by weights: each part floors to the fen, then the leftover fen
    go one each to the largest remainders (ties: the earlier weight). The parts sum to `total`."""
    if any(w < 0 for w in weights):
        raise ValueError("negative weight")
    weight_sum = sum(weights, ZERO)
    if weight_sum <= 0:
        raise ValueError("weights sum to zero")
    fen_total = int((total / FEN).to_integral_value())
    exact = [Decimal(fen_total) * w / weight_sum for w in weights]
    floors = [math.floor(e) for e in exact]
    left = fen_total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * FEN for f in floors]


def _base(rule: Rule, t: TicketInput) -> tuple[Decimal | None, dict[str, Any]]:
    p = rule.params
    if rule.kind == "fixed":
        return Decimal(p["amount"]), {"amount": p["amount"]}
    if rule.kind == "hourly":
        if t.hours is None:
            return None, {}
        return Decimal(p["rate"]) * t.hours, {"rate": p["rate"], "hours": t.hours}
    if t.fee is not None:
        gross, detail = t.fee, {"fee": t.fee}
    elif t.unit_price is not None:
        gross, detail = t.unit_price * t.quantity, {"unit_price": t.unit_price, "quantity": t.quantity}
    else:
        return None, {}
    if rule.kind == "per_item":
        return gross, detail
    done = [m for m in p["milestones"] if m["name"] in t.milestones_done]
    share = sum((Decimal(m["share"]) for m in done), ZERO)
    return gross * share / HUNDRED, {**detail, "milestones": [m["name"] for m in done], "share": share}


def _parts_line(t: TicketInput, problems: list[str]) -> tuple[Step | None, Line | None]:
    """The parts consumed as one line at cost (role “parts”), to the ticket's engineer, else to
    its first party; each part's quantity × unit price is in the step's detail."""
    if not t.parts:
        return None, None
    items, raw = [], ZERO
    for part in t.parts:
        cost = part.quantity * part.unit_price
        raw += cost
        items.append({"sku": part.sku, "name": part.name, "quantity": _shown(part.quantity),
                      "unit_price": _shown(part.unit_price), "amount": _shown(cost)})
    amount = money(raw)
    step = Step(None, "parts", "parts", ZERO, amount, {"parts": items})
    party = next((p for role, p in t.parties if role == "engineer"), t.parties[0][1] if t.parties else None)
    if party is None:
        problems.append(_("The ticket has nobody to settle with (no engineer, store or party)."))
        return step, None
    return step, Line(party, "parts", amount, "ticket", (step,))


@dataclass(frozen=True, slots=True)
class _Core:
    """What a ticket's work comes to before it is handed to its parties: the rounded amount
    (None when there is nothing to settle the work by), its steps, and the split rule."""

    amount: Decimal | None
    steps: tuple[Step, ...]
    problems: tuple[str, ...]
    split: Rule | None


def _core(t: TicketInput, chosen: Sequence[Rule]) -> _Core:
    """Phases 1–4 and the rounding: everything that does not depend on the parties or the parts."""
    steps: list[Step] = []
    problems: list[str] = []
    amount: Decimal | None = None
    billing = [r for r in chosen if r.kind in BILLING_KINDS]
    for rule in billing[:1]:  # one billing mode decides the base; the first by priority
        base, detail = _base(rule, t)
        if base is None:
            problems.append(_("Rule “%(rule)s” needs a price, a fee or hours that the ticket does not have.")
                            % {"rule": rule.name})
            continue
        bounded, why = _bound(rule, base)
        amount = bounded
        steps.append(Step(rule.id, rule.name, rule.kind, ZERO, bounded, {**detail, **({"bound": why} if why else {})}))
    if amount is None:
        # no billing rule: a typed fee, else the price book's price × quantity
        base = t.fee if t.fee is not None else (t.unit_price * t.quantity if t.unit_price is not None else None)
        if base is None:
            problems = problems or [_("The ticket has no service item price, fee or billing rule to settle by.")]
            return _Core(None, tuple(steps), tuple(problems), None)
        amount = base
        steps.append(Step(None, "price_book", "per_item", ZERO, base,
                          {"fee": t.fee} if t.fee is not None else {"unit_price": t.unit_price,
                                                                    "quantity": t.quantity}))
    for rule in (r for r in chosen if r.kind in COEFFICIENT_KINDS):
        p = rule.params
        if rule.kind == "region_class":
            coef = p["coefficients"].get(t.region_class)
            if coef is None:
                continue
            factor, detail = Decimal(coef), {"class": t.region_class, "coefficient": coef}
        else:
            if t.altitude_m is None or t.altitude_m <= p["above_m"]:
                continue
            factor, detail = Decimal(p["multiplier"]), {"altitude_m": t.altitude_m, "above_m": p["above_m"],
                                                        "multiplier": p["multiplier"]}
        delta, why = _bound(rule, amount * factor - amount)
        steps.append(Step(rule.id, rule.name, rule.kind, amount, amount + delta,
                          {**detail, **({"bound": why} if why else {})}))
        amount += delta
    surcharge_base = amount
    for rule in (r for r in chosen if r.kind == "surcharge"):
        flag = rule.params["flag"]
        if flag not in t.flags:
            continue
        delta, why = _bound(rule, surcharge_base * Decimal(rule.params["percent"]) / HUNDRED)
        steps.append(Step(rule.id, rule.name, rule.kind, amount, amount + delta,
                          {"flag": flag, "percent": rule.params["percent"], "of": surcharge_base,
                           **({"bound": why} if why else {})}))
        amount += delta
    for rule in (r for r in chosen if r.kind == "distance"):
        if t.distance_km is None:
            continue
        p = rule.params
        beyond = max(ZERO, t.distance_km - Decimal(p["base_km"]))
        delta, why = _bound(rule, Decimal(p["base_amount"]) + beyond * Decimal(p["per_km"]))
        steps.append(Step(rule.id, rule.name, rule.kind, amount, amount + delta,
                          {"distance_km": t.distance_km, "base_km": p["base_km"], "beyond_km": beyond,
                           "per_km": p["per_km"], "base_amount": p["base_amount"],
                           **({"bound": why} if why else {})}))
        amount += delta
    total = money(amount)
    if total != amount:
        steps.append(Step(None, "rounding", "rounding", amount, total, {}))
    split = next((r for r in chosen if r.kind == "split"), None)
    return _Core(total, tuple(steps), tuple(problems), split)


def ticket_settle(t: TicketInput, rules: Sequence[Rule] | RuleBook) -> TicketResult:
    """The ticket's total and its lines, every rule applied recorded as a step. Pass a RuleBook
    when settling many tickets with the same rules."""
    book = rules if isinstance(rules, RuleBook) else RuleBook(rules)
    core = _core(t, book.chosen(t))
    problems = list(core.problems)
    if core.amount is None:
        parts_step, parts_line = _parts_line(t, problems)
        return TicketResult(parts_step.after if parts_step else ZERO,
                            (*core.steps, parts_step) if parts_step else core.steps,
                            (parts_line,) if parts_line else (), tuple(problems))
    total = core.amount
    steps = list(core.steps)
    lines = _lines(t, total, [core.split] if core.split else [], core.steps, problems)
    parts_step, parts_line = _parts_line(t, [] if not t.parties else problems)  # said once already
    if parts_step is not None:
        steps.append(parts_step)
        total += parts_step.after
        if parts_line is not None:
            lines = (*lines, parts_line)
    return TicketResult(total, tuple(steps), lines, tuple(problems))


LineRow = tuple[int, str, Decimal, list[dict[str, Any]]]
_MEMO_SIZE = 50_000


def ticket_lines(t: TicketInput, book: RuleBook) -> list[LineRow]:
    """A run's view of `ticket_settle(t, book).lines`: each line as (party id, role, amount,
    breakdown JSON), the same values. The work's steps depend only on the rules that apply and
    the ticket's priced inputs, not on its parties, so the book remembers them (and their JSON)
    per distinct input: a month's tickets of the same item, class, flags and distance are
    computed and rendered once. Lines with the same steps share one breakdown list (read-only)."""
    chosen = book.chosen(t)
    key = (tuple(map(id, chosen)), t.region_class, t.unit_price, t.fee, t.quantity, t.hours, t.flags, t.altitude_m,
           t.distance_km, t.milestones_done)
    memo = book._memo
    entry = memo.get(key)
    if entry is None:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
            book._split_memo.clear()
        core = _core(t, chosen)
        entry = memo[key] = (core, RenderedBreakdown([s.as_json() for s in core.steps]))
    core, steps_json = entry
    out: list[LineRow] = []
    if core.amount is not None and t.parties:
        split = core.split
        if split is not None:
            by_role: dict[str, int] = {}
            for role, party in t.parties:
                by_role.setdefault(role, party)
            # which of the split's roles the ticket has (and, when none, who takes the whole)
            split_key = (key, tuple(r["role"] in by_role for r in split.params["roles"]), t.parties[0][0])
            shares = book._split_memo.get(split_key)
            if shares is None:
                shares = book._split_memo[split_key] = [
                    (line.role, line.amount, RenderedBreakdown(line.breakdown()))
                    for line in _lines(t, core.amount, [split], core.steps, [])]
            out.extend((by_role[role], role, amount, breakdown) for role, amount, breakdown in shares)
        else:
            role, party = t.parties[0]
            out.append((party, role, core.amount, steps_json))
    if t.parts:
        _step, parts_line = _parts_line(t, [])
        if parts_line is not None:
            out.append((parts_line.party_id, parts_line.role, parts_line.amount, parts_line.breakdown()))
    return out


def _lines(t: TicketInput, total: Decimal, split: list[Rule], steps: tuple[Step, ...],
           problems: list[str]) -> tuple[Line, ...]:
    by_role: dict[str, int] = {}
    for role, party in t.parties:
        by_role.setdefault(role, party)
    if split:
        rule = split[0]
        present = [r for r in rule.params["roles"] if r["role"] in by_role and Decimal(r["weight"]) > 0]
        if present:
            weights = [Decimal(r["weight"]) for r in present]
            parts = split_amount(total, weights)
            weight_sum = sum(weights, ZERO)
            return tuple(
                Line(by_role[r["role"]], r["role"], part, "ticket", (*steps, Step(
                    rule.id, rule.name, "split", total, part,
                    {"role": r["role"], "weight": r["weight"], "of_weights": weight_sum})))
                for r, part in zip(present, parts, strict=True))
        problems.append(_("Split “%(rule)s” names no role this ticket has; the whole amount goes to its first party.")
                        % {"rule": rule.name})
    if not t.parties:
        problems.append(_("The ticket has nobody to settle with (no engineer, store or party)."))
        return ()
    role, party = t.parties[0]
    return (Line(party, role, total, "ticket", steps),)


# --- period -------------------------------------------------------------------------------------

def period_window(kind: str, day: date) -> tuple[date, date]:
    """The month or quarter containing `day`, as (first day, last day)."""
    start = day.replace(day=1) if kind == "month" else date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    months = 1 if kind == "month" else 3
    y, m = divmod(start.month - 1 + months, 12)
    end = date(start.year + y, m + 1, 1).toordinal() - 1
    return start, date.fromordinal(end)


def rebate_amount(volume: Decimal, count: int, params: Mapping[str, Any]) -> tuple[Decimal, dict[str, Any]]:
    """Tiered rebate: retroactive = the whole volume at the rate of the tier reached; marginal =
    each slice of the volume at its own tier's rate (like income tax brackets)."""
    tiers = [(Decimal(t["from"]), Decimal(t["percent"])) for t in params["tiers"]]
    measure = Decimal(count) if params["basis"] == "count" else volume
    reached = max(i for i, (start, _pct) in enumerate(tiers) if measure >= start) if measure >= 0 else 0
    if params["mode"] == "retroactive":
        pct = tiers[reached][1]
        return volume * pct / HUNDRED, {"tier": reached + 1, "percent": pct, "volume": volume, "count": count}
    total, slices = ZERO, []
    for i, (start, pct) in enumerate(tiers):
        end = tiers[i + 1][0] if i + 1 < len(tiers) else None
        if volume <= start:
            break
        part = (min(volume, end) if end is not None else volume) - start
        total += part * pct / HUNDRED
        slices.append(f"{part}×{pct}%")
    return total, {"tier": reached + 1, "volume": volume, "slices": slices}


def period_settle(volumes: Sequence[PartyVolume], rules: Sequence[Rule], *, period_end: date) -> list[Line]:
    """Rebate and bonus lines for the run ending `period_end`. A rule over a quarter pays in the
    run whose period ends on the quarter's last day (a March run pays Q1's quarterly rules), so
    monthly runs never double-count quarterly ones."""
    out: list[Line] = []
    for rule in sorted((r for r in rules if r.kind in PERIOD_KINDS and r.in_force(period_end)),
                       key=lambda r: (r.priority, r.id)):
        p = rule.params
        start, end = period_window(p["period"], period_end)
        if end != period_end:
            continue
        for v in sorted(volumes, key=lambda v: v.party_id):
            if p["party_kind"] and v.party_kind != p["party_kind"]:
                continue
            if not condition_eval(rule.condition, v.context):
                continue
            if rule.kind == "rebate":
                raw, detail = rebate_amount(v.amount, v.count, p)
            elif rule.kind == "first_order_bonus":
                if v.first_order_amount is None or v.first_order_amount < Decimal(p["threshold"]):
                    continue
                raw = v.first_order_amount * Decimal(p["percent"]) / HUNDRED
                detail = {"first_order": v.first_order_amount, "threshold": p["threshold"], "percent": p["percent"]}
            else:
                if v.amount < Decimal(p["target"]):
                    continue
                raw = v.amount * Decimal(p["percent"]) / HUNDRED
                detail = {"volume": v.amount, "target": p["target"], "percent": p["percent"]}
            bounded, why = _bound(rule, raw)
            amount = money(bounded)
            if amount == ZERO:
                continue
            detail = {**detail, "window": f"{start.isoformat()}/{end.isoformat()}", **({"bound": why} if why else {})}
            out.append(Line(v.party_id, v.party_kind, amount, "rebate" if rule.kind == "rebate" else "bonus",
                            (Step(rule.id, rule.name, rule.kind, ZERO, bounded, detail),)))
    return out


# --- inputs -------------------------------------------------------------------------------------

def altitude_clean(value: Any) -> int:
    """An altitude in metres, within what the earth has."""
    number = _dec(value, _("altitude"), minimum=None, maximum=None)
    if not (ALTITUDE_RANGE[0] <= number <= ALTITUDE_RANGE[1]):
        raise ValidationError(_("An altitude must be between %(min)s m and %(max)s m; %(value)s m is not possible.")
                              % {"min": ALTITUDE_RANGE[0], "max": ALTITUDE_RANGE[1], "value": number})
    return int(number)


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> Decimal:
    """Great-circle distance, rounded to 0.1 km (the precision a travel surcharge is priced at)."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    km = 2 * r * math.asin(min(1.0, math.sqrt(h)))
    return Decimal(repr(km)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
