"""data_clean, the one path from submitted input to stored JSON (with upload_check and computed
fields), plus prefill_values and the active-language field_label/display_value."""

import copy
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext

from .base import (
    _MAGIC,
    AUDIENCES,
    BLOCKED_EXTENSIONS,
    IMAGE_EXTENSIONS,
    _as_list,
    _blank,
    _decimal_str,
    _is_empty,
    _parse_date,
    _parse_datetime,
    _text,
)
from .cleaners import _picker_labels
from .registry import FIELD_TYPES
from .schema import schema_validate


def _raw_value(data, key, ftype):
    if ftype.multi and hasattr(data, "getlist"):
        return data.getlist(key)
    return data.get(key)


def _sniff_image(upload):
    try:
        upload.seek(0)
        head = upload.read(16)
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


# Document formats by their first bytes; anything else is stored as what no browser renders.
_DOCUMENT_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
)
# A zip or OLE container is named by the extension it came with (the bytes agree on the family).
_CONTAINER_TYPES = {
    ("application/zip", "docx"): "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ("application/zip", "xlsx"): "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ("application/zip", "pptx"): "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ("application/x-ole-storage", "doc"): "application/msword",
    ("application/x-ole-storage", "xls"): "application/vnd.ms-excel",
}
_TEXT_TYPES = {"txt": "text/plain", "csv": "text/csv"}


def _detected_type(upload, extension):
    """The content type the file's bytes show, never the browser's declaration (which anyone can
    set to text/html): images and documents by their magic bytes, .txt/.csv when the start
    decodes as text, else application/octet-stream."""
    kind = _sniff_image(upload)
    if kind:
        return kind
    try:
        upload.seek(0)
        head = upload.read(2048)
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        return "application/octet-stream"
    family = next((kind for magic, kind in _DOCUMENT_MAGIC if head.startswith(magic)), None)
    if family:
        return _CONTAINER_TYPES.get((family, extension), family)
    if extension in _TEXT_TYPES and b"\x00" not in head:
        for encoding in ("utf-8", "gb18030"):
            try:
                head.decode(encoding)
            except UnicodeDecodeError as exc:
                if exc.start >= len(head) - 4:  # a character cut at the end of the sample
                    return _TEXT_TYPES[extension]
                continue
            return _TEXT_TYPES[extension]
    return "application/octet-stream"


def _files_clean(field, uploads):
    """Describe the uploads after checking count, extension, size and (for images) content."""
    rules = field["validation"]
    if len(uploads) > rules["max_files"]:
        raise ValidationError(
            ngettext("Upload at most %(count)d file.", "Upload at most %(count)d files.", rules["max_files"])
            % {"count": rules["max_files"]},
            code="max_files",
        )
    errors, described = [], []
    limit = rules["max_size_mb"] * 1024 * 1024
    for upload in uploads:
        if not hasattr(upload, "read") or not getattr(upload, "name", None):
            errors.append(gettext("No file was submitted. Check the encoding type on the form."))
            continue
        name = PurePath(str(upload.name).replace("\\", "/")).name
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        size = upload.size or 0
        if extension not in rules["extensions"]:
            errors.append(
                gettext("“%(name)s”: this file type is not allowed (allowed: %(allowed)s).")
                % {"name": name, "allowed": ", ".join(rules["extensions"])}
            )
        elif size == 0:
            errors.append(gettext("“%(name)s” is empty.") % {"name": name})
        elif size > limit:
            errors.append(
                gettext("“%(name)s” is larger than %(limit)d MB.") % {"name": name, "limit": rules["max_size_mb"]}
            )
        elif len(name) > 200:
            errors.append(gettext("The file name “%(name)s…” is longer than 200 characters.") % {"name": name[:40]})
        else:
            kind = _sniff_image(upload) if extension in IMAGE_EXTENSIONS else None
            if extension in IMAGE_EXTENSIONS and kind is None:
                errors.append(
                    gettext("“%(name)s” is not a valid image (PNG, JPEG, GIF or WebP).") % {"name": name}
                )
                continue
            content_type = _detected_type(upload, extension)
            # attachment_store records upload.content_type: make it what was detected.
            upload.content_type = content_type
            described.append({"name": name, "size": size, "content_type": content_type})
    if errors:
        raise ValidationError(errors, code="invalid")
    return described


def upload_check(upload, *, kind="file", max_size_mb=10, extensions=None):
    """Check one upload outside a field (a comment's attachment) by the same rules as an
    image/file field with default limits. Returns its description; raises ValidationError."""
    if kind not in ("image", "file"):
        raise ValueError(f"kind must be image or file, not {kind!r}")
    rules = dict(FIELD_TYPES[kind].validation_defaults, max_files=1, max_size_mb=max_size_mb)
    if extensions is not None:
        rules["extensions"] = [ext for ext in extensions if ext not in BLOCKED_EXTENSIONS]
    return _files_clean({"validation": rules}, [upload])[0]


def _months_between(start, end):
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if end.day < start.day else months


def _stored_date(value):
    if value in (None, ""):
        return None
    return _parse_date(value) if len(str(value)) == 10 else timezone.localdate(_parse_datetime(value))


def _compute(field, values):
    """A computed field's value from the cleaned values; None while an input is empty."""
    formula = field["options"]["formula"]
    op = formula["op"]
    if op == "months_since":
        start = _stored_date(values.get(formula["field"]))
        return None if start is None else _months_between(start, timezone.localdate())
    inputs = [values.get(key) for key in formula["fields"]]
    if any(value in (None, "") for value in inputs):
        return None
    if op == "days_between":
        first, second = (_stored_date(value) for value in inputs)
        return (second - first).days
    numbers = [Decimal(str(value)) for value in inputs]
    with localcontext(prec=60):  # products of large amounts must not round silently
        result = Decimal(1) if op == "mul" else Decimal(0)
        for number in numbers:
            result = result * number if op == "mul" else result + number
        places = 2 if formula.get("money") else formula.get("places")
        if places is None:
            return _decimal_str(result)
        # Written-down rounding rule (DESIGN rule 5): half up, once, at the end.
        return format(result.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) + 0, "f")


def _editable(field, audience):
    return field[audience] == "edit" and not FIELD_TYPES[field["type"]].computed


def _check_audience(audience):
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, not {audience!r}")


def data_clean(fields, data, *, audience, files=None, partial=False, current=None, normalised=False):
    """Validate submitted `data` (a dict or QueryDict) and `files` against a field list.

    Only fields the audience may edit are read; the rest keep their defaults (or, with
    partial=True, are left out so the caller keeps the stored value). Required fields left out
    fail unless partial. Returns (cleaned_data, files_to_store); raises ValidationError({key:
    [messages]}) with every field's errors at once. Pickers check ids in the open tenant scope.
    With partial=True, pass the stored data as `current` so a computed field is recomputed when
    only some of its inputs change. `normalised=True` says `fields` is schema_validate's own
    result (a form built by form_class_for holds one), so the check is not repeated."""
    _check_audience(audience)
    schema = fields if normalised else schema_validate(fields)
    data = data if data is not None else {}
    files = files if files is not None else {}
    cleaned, to_store, errors, picked = {}, {}, {}, {}
    required_message = gettext("This field is required.")
    for field in schema:
        key, ftype = field["key"], FIELD_TYPES[field["type"]]
        if ftype.computed:
            continue
        if not _editable(field, audience):
            if not partial:
                cleaned[key] = copy.deepcopy(field["default"]) if field["default"] is not None else ftype.empty_value()
            continue
        if ftype.is_file:
            uploads = [u for u in _as_list(_raw_value(files, key, ftype)) if u]
            if not uploads:
                if field["required"] and not partial:
                    errors[key] = [required_message]
                elif not partial:
                    cleaned[key] = []
                continue
            try:
                cleaned[key] = _files_clean(field, uploads)
                to_store[key] = uploads
            except ValidationError as exc:
                errors[key] = exc.messages
            continue
        if key in data:
            raw = _raw_value(data, key, ftype)
        elif partial:
            continue
        else:
            raw = field["default"]
        try:
            value = ftype.empty_value() if _blank(raw) else ftype.clean(field, raw)
        except ValidationError as exc:
            errors[key] = exc.messages
            continue
        if field["required"] and (_is_empty(value) or value is False):
            errors[key] = [required_message]
            continue
        cleaned[key] = value
        if ftype.picker and value is not None:
            picked.setdefault(field["type"], {})[key] = value
    for kind, by_key in picked.items():
        found = _picker_labels(kind, set(by_key.values()), active_only=kind == "staff")
        thing = capfirst(FIELD_TYPES[kind].label)
        for key, pk in by_key.items():
            if pk not in found:
                errors[key] = [gettext("%(thing)s %(id)s was not found.") % {"thing": thing, "id": pk}]
    if errors:
        raise ValidationError(errors)
    values = {**(current or {}), **cleaned} if partial else cleaned
    for field in schema:
        if FIELD_TYPES[field["type"]].computed:
            formula = field["options"]["formula"]
            refs = [formula["field"]] if "field" in formula else formula["fields"]
            # A partial edit recomputes only when an input changed and every input is known;
            # otherwise the stored result stays, rather than being wiped by a guess.
            if not partial or (any(ref in cleaned for ref in refs) and all(ref in values for ref in refs)):
                cleaned[field["key"]] = _compute(field, values)
    return cleaned, to_store


def prefill_values(fields, *, customer=None, opportunity=None):
    """Suggested values for fields with a prefill source, in their stored form. A source value
    that does not fit the field (a landline in a mobile-only pattern…) is skipped, not an error."""
    if customer is None and opportunity is not None:
        customer = opportunity.customer
    sources = {
        "customer.name": getattr(customer, "name", None),
        "customer.phone": getattr(customer, "phone", None),
        "customer.address": getattr(customer, "address", None),
        "opportunity.amount": getattr(opportunity, "amount", None),
        "opportunity.title": getattr(opportunity, "title", None),
    }
    values = {}
    for field in schema_validate(fields):
        raw = sources.get(field["prefill"]) if field["prefill"] else None
        if _blank(raw):
            continue
        try:
            values[field["key"]] = FIELD_TYPES[field["type"]].clean(field, raw)
        except ValidationError:
            continue
    return values


def field_label(field):
    """A field's label in the active language (Chinese when there is no English one)."""
    return _text(field.get("label"), field.get("key", ""))


def display_value(field, value, *, known_names=None):
    """A stored value as text for the ticket page, in the active language ("" when empty).
    `known_names` ({picker type: {id: name}}) are names the caller has read already — the ticket
    page its own store, region and customer — so a picker does not read them again."""
    ftype = FIELD_TYPES.get(field.get("type"))
    if _is_empty(value):
        return ""
    if ftype is None:
        return str(value)
    try:
        if ftype.picker and known_names:
            return ftype.display(field, value, known_names.get(field["type"]))
        return ftype.display(field, value)
    except (ValidationError, InvalidOperation, TypeError, ValueError, AttributeError):
        return str(value)  # data older than a schema change: show it raw rather than fail the page
