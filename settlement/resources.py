"""Excel/CSV export of statements with django-import-export (the lines of a run, each with its
breakdown as one readable cell)."""

from django.utils.translation import gettext as _
from import_export import fields, resources

from .models import SettlementLine


def breakdown_text(steps) -> str:
    names = {"price_book": _("Price book"), "rounding": _("Rounded half-up to the fen"),
             "adjustment": _("Recomputed: adjustment")}
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
        return breakdown_text(line.breakdown)
