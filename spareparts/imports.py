"""Catalogue and stock-count imports: parse the uploaded file, check every row first (a dry run),
and write only when no row is wrong — all rows or none, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from . import services
from .models import Part, Stock, Warehouse
from .resources import PartResource

MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
COUNT_COLUMNS = ("warehouse", "sku", "counted")


@dataclass
class ImportOutcome:
    """What an import found (and did, unless it was a preview)."""

    errors: list[str] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False


def dataset_load(*, content: bytes, filename: str) -> tablib.Dataset:
    """A tablib Dataset from an uploaded .csv (UTF-8) or .xlsx; ValidationError if unreadable."""
    if len(content) > MAX_BYTES:
        raise ValidationError(_("The file is larger than 2 MB."))
    name = filename.lower()
    try:
        if name.endswith(".csv"):
            data = tablib.Dataset().load(content.decode("utf-8-sig"), format="csv")
        elif name.endswith(".xlsx"):
            data = tablib.Dataset().load(content, format="xlsx")
        else:
            raise ValidationError(_("Upload a .csv or .xlsx file."))
    except ValidationError:
        raise
    except Exception as exc:  # tablib/openpyxl raise many kinds for a broken file
        raise ValidationError(_("The file could not be read: is it a valid CSV (UTF-8) or Excel file?")) from exc
    if not data.headers:
        raise ValidationError(_("The file has no header row."))
    if len(data) > MAX_ROWS:
        raise ValidationError(_("At most %(n)d rows per file.") % {"n": MAX_ROWS})
    return data


def _row_error(number, error) -> str:
    return _("Row %(n)d: %(error)s") % {"n": number, "error": error}


def parts_import(*, tenant, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    missing = [c for c in ("sku", "name") if c not in (dataset.headers or [])]
    if missing:
        return ImportOutcome(errors=[_("Missing columns: %(cols)s.") % {"cols": ", ".join(missing)}])
    resource = PartResource(tenant=tenant)
    result = resource.import_data(dataset, dry_run=True, use_transactions=True, raise_errors=False)
    outcome = ImportOutcome(new=result.totals.get("new", 0), updated=result.totals.get("update", 0),
                            unchanged=result.totals.get("skip", 0))
    for number, errors in result.row_errors():
        outcome.errors += [_row_error(number, e.error) for e in errors]
    for row in result.invalid_rows:
        for name, messages in row.error_dict.items():
            label = "" if name == "__all__" else f"{name}: "
            outcome.errors += [_row_error(row.number, label + m) for m in messages]
    if outcome.errors or dry_run:
        return outcome
    with transaction.atomic():
        resource.import_data(dataset, dry_run=False, use_transactions=True, raise_errors=True)
    outcome.written = True
    return outcome


def stock_counts_import(*, tenant, dataset: tablib.Dataset, actor, dry_run: bool) -> ImportOutcome:
    """Rows of (warehouse code, SKU, counted units): each difference becomes an `adjust` movement
    with the reason 盘点导入; a count below what is reserved is refused."""
    missing = [c for c in COUNT_COLUMNS if c not in (dataset.headers or [])]
    if missing:
        return ImportOutcome(errors=[_("Missing columns: %(cols)s.") % {"cols": ", ".join(missing)}])
    warehouses = {w.code: w for w in Warehouse.objects.all()}
    parts = {p.sku: p for p in Part.objects.all()}
    levels = {(s.warehouse_id, s.part_id): s for s in Stock.objects.all()}
    outcome, plan = ImportOutcome(), []
    for number, row in enumerate(dataset.dict, start=1):
        code, sku, counted = (str(row.get(c) if row.get(c) is not None else "").strip() for c in COUNT_COLUMNS)
        warehouse, part = warehouses.get(code), parts.get(sku)
        if warehouse is None:
            outcome.errors.append(_row_error(number, _("unknown warehouse “%(code)s”.") % {"code": code[:30]}))
            continue
        if part is None:
            outcome.errors.append(_row_error(number, _("unknown SKU “%(sku)s”.") % {"sku": sku[:40]}))
            continue
        if not counted.isdigit() or int(counted) > services.MAX_QUANTITY:
            outcome.errors.append(_row_error(number, _("the count must be a whole number from 0 to %(max)d.")
                                             % {"max": services.MAX_QUANTITY}))
            continue
        stock = levels.get((warehouse.pk, part.pk))
        on_hand, reserved = (stock.on_hand, stock.reserved) if stock else (0, 0)
        if int(counted) < reserved:
            outcome.errors.append(_row_error(number, _("%(n)d are reserved, the count cannot be lower.")
                                             % {"n": reserved}))
            continue
        delta = int(counted) - on_hand
        if delta:
            plan.append((warehouse, part, delta))
            outcome.updated += 1
        else:
            outcome.unchanged += 1
    if outcome.errors or dry_run:
        return outcome
    with transaction.atomic():
        for warehouse, part, delta in plan:
            services.stock_adjust(warehouse=warehouse, part=part, delta=delta, reason="盘点导入", actor=actor)
    outcome.written = True
    return outcome
