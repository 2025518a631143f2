"""Price book and rule imports (the files `ServicePriceResource` / `SettlementRuleResource`
export): every row checked through the same services as the forms, inside one transaction that
is rolled back for a preview (dry run) or when any row is wrong — all rows or none."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import ServiceItem, ServicePrice, SettlementRule
from .services import price_set, rule_save, service_item_create

MAX_ROWS = 2000
MAX_BYTES = 1024 * 1024
MAX_CELL = 4000
PRICE_COLUMNS = ("item", "price", "effective_from")
RULE_COLUMNS = ("name", "kind", "params")


@dataclass
class ImportOutcome:
    """What an import found (and did, unless it was a preview): row errors, and the rows it
    would add or change."""

    errors: list[str] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False


class _RollBack(Exception):
    pass


def dataset_load(*, content: bytes, filename: str) -> tablib.Dataset:
    """A tablib Dataset from an uploaded .csv (UTF-8) or .xlsx; ValidationError if unreadable."""
    if len(content) > MAX_BYTES:
        raise ValidationError(_("The file is larger than 1 MB."))
    name = (filename or "").lower()
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


def _row_error(number: int, error: Any) -> str:
    return _("Row %(n)d: %(error)s") % {"n": number, "error": error}


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{key}: {m}" if key != "__all__" else m for key, ms in exc.message_dict.items() for m in ms]
    return list(exc.messages)


def _text(row: dict, key: str) -> str:
    value = row.get(key)
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_CELL:
        raise ValidationError(_("“%(col)s” is longer than %(n)d characters.") % {"col": key, "n": MAX_CELL})
    return text


def _decimal(row: dict, key: str, *, required: bool) -> Decimal | None:
    text = _text(row, key)
    if not text:
        if required:
            raise ValidationError(_("“%(col)s” is empty.") % {"col": key})
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValidationError(_("“%(col)s” must be a number, not “%(value)s”.")
                              % {"col": key, "value": text[:30]}) from None
    if not number.is_finite():
        raise ValidationError(_("“%(col)s” must be a number, not “%(value)s”.") % {"col": key, "value": text[:30]})
    return number


def _date(row: dict, key: str, *, required: bool) -> date | None:
    value = row.get(key)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(row, key)
    if not text:
        if required:
            raise ValidationError(_("“%(col)s” is empty.") % {"col": key})
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValidationError(_("“%(col)s” must be a date like 2026-01-31, not “%(value)s”.")
                              % {"col": key, "value": text[:30]}) from None


def _bool(row: dict, key: str, default: bool) -> bool:
    text = _text(row, key).lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "y", "是"):
        return True
    if text in ("0", "false", "no", "n", "否"):
        return False
    raise ValidationError(_("“%(col)s” must be 1 or 0, not “%(value)s”.") % {"col": key, "value": text[:30]})


def _json(row: dict, key: str) -> dict:
    text = _text(row, key)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError(_("“%(col)s” is not valid JSON.") % {"col": key}) from None
    if not isinstance(value, dict):
        raise ValidationError(_("“%(col)s” must be a JSON object.") % {"col": key})
    return value


def _run(rows_apply, dataset: tablib.Dataset, columns: tuple[str, ...], dry_run: bool) -> ImportOutcome:
    missing = [c for c in columns if c not in (dataset.headers or [])]
    if missing:
        return ImportOutcome(errors=[_("Missing columns: %(cols)s.") % {"cols": ", ".join(missing)}])
    outcome = ImportOutcome()
    try:
        with transaction.atomic():
            for number, row in enumerate(dataset.dict, start=1):
                try:
                    # each row in its own savepoint, so the rows after a wrong one are still checked
                    with transaction.atomic():
                        counted = rows_apply(row)
                except ValidationError as exc:
                    outcome.errors += [_row_error(number, m) for m in _messages(exc)]
                else:
                    setattr(outcome, counted, getattr(outcome, counted) + 1)
            if outcome.errors or dry_run:
                raise _RollBack
    except _RollBack:
        return outcome
    outcome.written = True
    return outcome


def prices_import(*, tenant, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    """Rows of (item code, price, effective from[, name, unit]): an unknown item is created, a
    price on an existing start day replaces that version."""

    def apply(row: dict) -> str:
        code = _text(row, "item")
        price = _decimal(row, "price", required=True)
        start = _date(row, "effective_from", required=True)
        assert price is not None and start is not None  # required=True raised otherwise
        item = ServiceItem.objects.filter(code=code).first()
        if item is None:
            item = service_item_create(tenant=tenant, code=code, name=_text(row, "name") or code,
                                       unit=_text(row, "unit") or "次")
        before = ServicePrice.objects.filter(item=item, effective_from=start).values_list("price", flat=True).first()
        price_set(tenant=tenant, item=item, price=price, effective_from=start)
        return "new" if before is None else ("unchanged" if before == price else "updated")

    return _run(apply, dataset, PRICE_COLUMNS, dry_run)


def rules_import(*, tenant, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    """Rows of rules by name: a known name updates that rule, a new one creates it; each checked
    as the rule form checks it (numbers, condition, exclusive overlaps — also with the file's
    earlier rows)."""

    def apply(row: dict) -> str:
        name = _text(row, "name")
        values: dict[str, Any] = {"name": name, "kind": _text(row, "kind"), "params": _json(row, "params"),
                  "condition": _json(row, "condition"), "exclusive": _bool(row, "exclusive", False),
                  "is_active": _bool(row, "is_active", True), "cap": _decimal(row, "cap", required=False),
                  "minimum": _decimal(row, "minimum", required=False),
                  "effective_from": _date(row, "effective_from", required=False),
                  "effective_to": _date(row, "effective_to", required=False)}
        priority = _decimal(row, "priority", required=False)
        if priority is not None:
            if priority != priority.to_integral_value() or not 0 <= priority <= 1000:
                raise ValidationError(_("“priority” must be a whole number from 0 to 1000."))
            values["priority"] = int(priority)
        for bound in ("cap", "minimum"):
            number = values[bound]
            if number is not None and (number < 0 or number > Decimal("100000000")
                                       or number != number.quantize(Decimal("0.01"))):
                raise ValidationError(_("“%(col)s” must be an amount in yuan from 0, with at most two decimals.")
                                      % {"col": bound})
        rule = SettlementRule.objects.filter(name=name).first() if name else None
        if rule is not None:
            same = all(getattr(rule, k) == v for k, v in values.items() if k != "params")
        rule_save(tenant=tenant, rule=rule, **values)
        if rule is None:
            return "new"
        return "unchanged" if same and SettlementRule.objects.get(pk=rule.pk).params == rule.params else "updated"

    return _run(apply, dataset, RULE_COLUMNS, dry_run)
