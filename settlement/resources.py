"""Excel/CSV export with django-import-export: statements (the lines of a run, each with its
breakdown as one readable cell), the price book and the rules (read back by settlement.imports)."""

import json

from django.utils.translation import gettext as _
from import_export import fields, resources

from .models import ServicePrice, SettlementLine, SettlementRule


def breakdown_text(steps) -> str:
    names = {"price_book": _("Price book"), "rounding": _("Rounded half-up to the fen"),
             "adjustment": _("Recomputed: adjustment"), "parts": _("Parts consumed (at cost)")}
    return " → ".join(f"{names.get(s.get('rule'), s.get('rule'))}: {s.get('before')}→{s.get('after')}"
                      for s in steps or [])


class StatementLineResource(resources.ModelResource):
    party = fields.Field(attribute="party__name", column_name="party")
    party_kind = fields.Field(attribute="party__kind", column_name="party_kind")
    ticket = fields.Field(attribute="ticket__number", column_name="ticket")
    breakdown = fields.Field(column_name="breakdown")

    class Meta:
        model = SettlementLine
        fields = ("period_date", "party", "party_kind", "role", "kind", "ticket", "amount", "breakdown")
        export_order = fields

    def dehydrate_breakdown(self, line):
        return breakdown_text(line.breakdown.steps)


class ServicePriceResource(resources.ModelResource):
    """The price book, one row per price version: what `prices_import` reads back."""

    item = fields.Field(attribute="item__code", column_name="item")
    name = fields.Field(attribute="item__name", column_name="name")
    unit = fields.Field(attribute="item__unit", column_name="unit")

    class Meta:
        model = ServicePrice
        fields = ("item", "name", "unit", "price", "effective_from")
        export_order = fields


class SettlementRuleResource(resources.ModelResource):
    """Rules as rows, numbers and condition as JSON text: what `rules_import` reads back."""

    params = fields.Field(column_name="params")
    condition = fields.Field(column_name="condition")

    class Meta:
        model = SettlementRule
        fields = ("name", "kind", "params", "condition", "priority", "exclusive", "cap", "minimum",
                  "effective_from", "effective_to", "is_active")
        export_order = fields

    def dehydrate_params(self, rule):
        return json.dumps(rule.params, ensure_ascii=False, sort_keys=True)

    def dehydrate_condition(self, rule):
        return json.dumps(rule.condition, ensure_ascii=False, sort_keys=True) if rule.condition else ""
