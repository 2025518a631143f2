"""The parts catalogue as the tickets `parts` field sees it (registered in SparepartsConfig.ready)."""

from django.db.models import Q
from django.urls import reverse

from .models import Part


class Catalogue:
    def lookup(self, *, codes, ids):
        """{code or id: (id, sku, name)} of active parts of the tenant in scope, by SKU, barcode or id."""
        codes = [c.strip() for c in codes if isinstance(c, str) and c.strip()]
        ids = [i for i in ids if isinstance(i, int) and 0 < i < 2**62]
        if not codes and not ids:
            return {}
        found = {}
        rows = Part.objects.filter(Q(sku__in=codes) | Q(barcode__in=codes) | Q(pk__in=ids), is_active=True)
        for pk, sku, barcode, name in rows.values_list("pk", "sku", "barcode", "name"):
            entry = (pk, sku, name)
            found[pk] = entry
            found[sku] = entry
            if barcode:
                found[barcode] = entry
        return found

    def search_url(self):
        return reverse("parts-search")
