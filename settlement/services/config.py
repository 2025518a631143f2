"""Settlement configuration writes: parties, service items and their price versions, rules,
and the template field mapping — each checked before anything is saved."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from scrm.models import Region, Store
from tickets.models import TicketTemplate
from workflow.conditions import condition_check

from ..calculator import MAX_MONEY, Rule, exclusive_overlaps, rule_check, rule_params_clean
from ..models import (
    ROLE_INPUT_PREFIX,
    SETTLEMENT_INPUTS,
    Party,
    PartyKind,
    ServiceItem,
    ServicePrice,
    SettlementFieldMap,
    SettlementRule,
)


def _same_tenant(tenant, *objects: Any) -> None:
    for obj in objects:
        if obj is not None and obj.tenant_id != tenant.pk:
            raise ValidationError(_("That belongs to another tenant."))


@transaction.atomic
def party_create(*, tenant, kind: str, name: str, code: str, parent: Party | None = None, user=None,
                 store: Store | None = None, region: Region | None = None) -> Party:
    """A party who earns or pays; its parent (distributor above a store…) must be in the tenant."""
    _same_tenant(tenant, parent, store, region)
    if kind not in PartyKind.values:
        raise ValidationError({"kind": _("Unknown party kind.")})
    party = Party(tenant=tenant, kind=kind, name=name.strip(), code=code, parent=parent, user=user, store=store,
                  region=region)
    party.full_clean(exclude=["tenant"], validate_constraints=False)
    for field, value in (("user", user), ("store", store), ("region", region), ("code", code)):
        if value is not None and Party.objects.filter(**{field: value}).exists():
            raise ValidationError({field: _("Another party already has this %(field)s.") % {"field": field}})
    party.save()
    return party


@transaction.atomic
def service_item_create(*, tenant, code: str, name: str, unit: str = "次") -> ServiceItem:
    item = ServiceItem(tenant=tenant, code=code, name=name.strip(), unit=unit)
    item.full_clean(exclude=["tenant"], validate_constraints=False)
    if ServiceItem.objects.filter(code=code).exists():
        raise ValidationError({"code": _("A service item with this code exists.")})
    item.save()
    return item


@transaction.atomic
def price_set(*, tenant, item: ServiceItem, price: Decimal, effective_from: date) -> ServicePrice:
    """A new version of the item's price from `effective_from` (the same start day replaces it)."""
    _same_tenant(tenant, item)
    if not isinstance(price, Decimal) or not price.is_finite():
        raise ValidationError({"price": _("Enter a price in yuan.")})
    if price < 0:
        raise ValidationError({"price": _("A price cannot be negative.")})
    if price > MAX_MONEY or price != price.quantize(Decimal("0.01")):
        raise ValidationError({"price": _("Enter a price in yuan with at most two decimals, below 100,000,000.")})
    ServicePrice.objects.filter(item=item, effective_from=effective_from).delete()
    return ServicePrice.objects.create(tenant=tenant, item=item, price=price, effective_from=effective_from)


def rule_spec(rule: SettlementRule) -> Rule:
    """The calculator's view of a stored rule."""
    return Rule(id=rule.pk or 0, name=rule.name, kind=rule.kind, params=rule.params, condition=rule.condition or None,
                priority=rule.priority, exclusive=rule.exclusive, cap=rule.cap, minimum=rule.minimum,
                effective_from=rule.effective_from, effective_to=rule.effective_to)


def template_field_types() -> dict[str, str]:
    """Every field key of the tenant's published templates → its type (what conditions may name)."""
    out: dict[str, str] = {}
    for template in TicketTemplate.objects.filter(current_version__isnull=False).select_related("current_version"):
        for field in (template.current_version.fields if template.current_version else None) or []:
            out.setdefault(field.get("key", ""), field.get("type", ""))
    return out


def _condition_fields(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        return []
    if "field" in condition:
        return [condition["field"]]
    items = condition.get("all") or condition.get("any") or ([condition["not"]] if "not" in condition else [])
    return [f for c in items for f in _condition_fields(c)]


def rule_validate(rule: SettlementRule) -> None:
    """Everything wrong with a rule before it is saved, as one ValidationError."""
    if not (rule.name or "").strip():
        raise ValidationError({"name": _("Give the rule a name.")})
    try:
        rule.params = rule_params_clean(rule.kind, rule.params)
        condition_check(rule.condition or None)
        rule_check(rule_spec(rule))
    except ValidationError as exc:
        raise ValidationError({"params": exc.messages}) from None
    known = template_field_types()
    for name in _condition_fields(rule.condition):
        if name.startswith("data.") and name[5:] not in known:
            raise ValidationError({"condition": _("The condition names the field “%(field)s”, which no published "
                                                  "template has.") % {"field": name[5:]}})
    others = [rule_spec(r) for r in SettlementRule.objects.filter(is_active=True, exclusive=True)
              .exclude(pk=rule.pk)]
    clash = exclusive_overlaps(rule_spec(rule), others) if rule.is_active else []
    if clash:
        raise ValidationError({"exclusive": _("“%(other)s” is also exclusive for the same kind on overlapping dates; "
                                              "only one exclusive rule of a kind may be in force on a day.")
                               % {"other": clash[0].name}})
    if SettlementRule.objects.filter(name=rule.name.strip()).exclude(pk=rule.pk).exists():
        raise ValidationError({"name": _("Another rule has this name.")})


@transaction.atomic
def rule_save(*, tenant, rule: SettlementRule | None = None, **values: Any) -> SettlementRule:
    """Create (rule=None) or update a rule from keyword values; nothing is saved if it is wrong."""
    if rule is not None:
        _same_tenant(tenant, rule)
        rule = SettlementRule.objects.select_for_update().get(pk=rule.pk)
    else:
        rule = SettlementRule(tenant=tenant)
    for key, value in values.items():
        setattr(rule, key, value)
    rule.condition = rule.condition or {}
    rule_validate(rule)
    rule.name = rule.name.strip()
    rule.save()
    return rule


@transaction.atomic
def field_map_save(*, tenant, template: TicketTemplate, mapping: dict[str, str]) -> SettlementFieldMap:
    """Say which fields of the template feed settlement; each must exist in its published version
    with a type that fits the input (a number for the fee, a checkbox for the night flag…)."""
    _same_tenant(tenant, template)
    if template.current_version_id is None:
        raise ValidationError({"template": _("Publish the template first.")})
    if not isinstance(mapping, dict) or len(mapping) > 30:
        raise ValidationError({"mapping": _("The mapping is a list of at most 30 inputs.")})
    version = template.current_version
    fields = {f.get("key"): f.get("type") for f in (version.fields if version else None) or []}
    for name, key in mapping.items():
        role = name.startswith(ROLE_INPUT_PREFIX) and 0 < len(name) - len(ROLE_INPUT_PREFIX) <= 30
        if name not in SETTLEMENT_INPUTS and not role:
            raise ValidationError({"mapping": _("Unknown settlement input “%(name)s”.") % {"name": name}})
        if key not in fields:
            raise ValidationError({"mapping": _("The template has no field “%(field)s”.") % {"field": key}})
        allowed = ("staff",) if role else SETTLEMENT_INPUTS[name]
        if fields[key] not in allowed:
            raise ValidationError({"mapping": _("Field “%(field)s” cannot feed “%(name)s”: "
                                                "it is not a %(types)s field.")
                                   % {"field": key, "name": name, "types": " / ".join(allowed)}})
    field_map, _created = SettlementFieldMap.objects.update_or_create(
        template=template, defaults={"tenant": tenant, "mapping": mapping})
    return field_map
