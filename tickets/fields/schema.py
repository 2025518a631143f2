"""schema_validate: what a field definition may say; checks a template's field list and returns
it normalised."""

import copy
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from .base import (
    _EXTENSION_RE,
    BLOCKED_EXTENSIONS,
    FIELD_SETTINGS,
    IMAGE_EXTENSIONS,
    KEY_RE,
    LANGS,
    MAX_CHOICES,
    MAX_FIELDS,
    MAX_REGEX_LENGTH,
    MAX_TREE_DEPTH,
    MAX_TREE_NODES,
    PREFILL_SOURCES,
    PUBLIC_MODES,
    STAFF_MODES,
    _blank,
)
from .patterns import PatternError, pattern_compile
from .registry import _LENGTH_CAPS, FIELD_TYPES


def _labels_normalise(raw, problems, *, required, max_length):
    if raw is None or raw in ("", {}):
        if required:
            problems.append(gettext("the label needs Chinese (zh-hans) text."))
        return {}
    if isinstance(raw, str):
        raw = {"zh-hans": raw}
    if not isinstance(raw, Mapping):
        problems.append(gettext("labels and help are texts per language, e.g. {\"zh-hans\": …, \"en\": …}."))
        return {}
    unknown = sorted(map(str, set(raw) - set(LANGS)))
    if unknown:
        problems.append(gettext("unknown language(s): %(names)s.") % {"names": ", ".join(unknown)})
    out = {}
    for lang in LANGS:
        value = raw.get(lang)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value.strip()) > max_length:
            problems.append(gettext("texts must be strings of at most %(limit)d characters.") % {"limit": max_length})
            continue
        if value.strip():
            out[lang] = value.strip()
    if required and not out.get("zh-hans"):
        problems.append(gettext("the label needs Chinese (zh-hans) text."))
    return out


def _small_int(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _validation_normalise(ftype, raw, problems):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(gettext("“validation” must be an object."))
        raw = {}
    for name in sorted(map(str, set(raw) - ftype.validation)):
        problems.append(gettext("the setting validation.%(name)s does not apply to this type.") % {"name": name})
    out = copy.deepcopy(dict(ftype.validation_defaults))
    out.update({k: v for k, v in raw.items() if k in ftype.validation and v is not None})
    cap = _LENGTH_CAPS.get(ftype.name, 0)
    limits = {"min_length": (0, cap), "max_length": (1, cap), "max_size_mb": (1, 50), "max_files": (1, 20),
              "decimal_places": (0, 10)}
    for name, (low, high) in limits.items():
        if name in out and not _small_int(out[name], low, high):
            problems.append(
                gettext("validation.%(name)s must be a whole number from %(low)d to %(high)d.")
                % {"name": name, "low": low, "high": high}
            )
            out.pop(name)
    if out.get("min_length", 0) > out.get("max_length", cap):
        problems.append(gettext("validation.min_length is greater than validation.max_length."))
    if "regex" in ftype.validation:
        _regex_check(ftype, out, problems)
    if "extensions" in out:
        _extensions_check(ftype, out, problems)
    if "min" in ftype.validation:
        _range_check(ftype, out, problems)
    return out


def _regex_check(ftype, out, problems):
    regex = out.get("regex")
    if regex is None:
        if ftype.name == "pattern":
            problems.append(gettext("a formatted-code field needs validation.regex."))
        return
    if not isinstance(regex, str) or not regex or len(regex) > MAX_REGEX_LENGTH:
        problems.append(gettext("invalid regular expression (at most %(limit)d characters).")
                        % {"limit": MAX_REGEX_LENGTH})
        out.pop("regex")
        return
    try:
        pattern_compile(regex)
    except PatternError as exc:
        problems.append(gettext("invalid regular expression: %(error)s.") % {"error": exc})
        out.pop("regex")


def _extensions_check(ftype, out, problems):
    extensions = out["extensions"]
    allowed = IMAGE_EXTENSIONS if ftype.name == "image" else None
    if not isinstance(extensions, list) or not extensions or len(extensions) > 30:
        problems.append(gettext("validation.extensions must be a non-empty list."))
        out["extensions"] = list(ftype.validation_defaults["extensions"])
        return
    cleaned = []
    for ext in extensions:
        ext = ext.lower().lstrip(".") if isinstance(ext, str) else ""
        if not _EXTENSION_RE.match(ext) or ext in BLOCKED_EXTENSIONS or (allowed and ext not in allowed):
            problems.append(gettext("file type “%(ext)s” is not allowed here.") % {"ext": ext})
        elif ext not in cleaned:
            cleaned.append(ext)
    out["extensions"] = cleaned or list(ftype.validation_defaults["extensions"])


def _range_check(ftype, out, problems):
    bounds = {}
    for name in ("min", "max"):
        if name not in out:
            continue
        if out[name] in ("today", "now"):
            if out[name] != {"date": "today", "datetime": "now"}.get(ftype.name):
                problems.append(gettext("validation.%(name)s is not a valid value.") % {"name": name})
                out.pop(name)
            continue
        try:
            bounds[name] = ftype.parse_bound(out[name])
        except ValidationError:
            problems.append(gettext("validation.%(name)s is not a valid value.") % {"name": name})
            out.pop(name)
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        problems.append(gettext("validation.min is greater than validation.max."))


def _choices_normalise(raw, problems):
    if not isinstance(raw, list) or not raw:
        problems.append(gettext("choices are missing: add at least one."))
        return []
    if len(raw) > MAX_CHOICES:
        problems.append(gettext("at most %(limit)d choices.") % {"limit": MAX_CHOICES})
    out, seen = [], set()
    for item in raw[:MAX_CHOICES]:
        if isinstance(item, str | int) and not isinstance(item, bool):
            item = {"value": str(item)}
        value = item.get("value") if isinstance(item, Mapping) else None
        value = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not value or len(value) > 100:
            problems.append(gettext("each choice needs a value of 1 to 100 characters."))
            continue
        if value in seen:
            problems.append(gettext("the choice “%(value)s” appears twice.") % {"value": value})
            continue
        seen.add(value)
        label = _labels_normalise(item.get("label"), problems, required=False, max_length=100)
        out.append({"value": value, "label": {"zh-hans": value, **label}})
    return out


def _tree_normalise(raw, problems, depth=1, counter=None):
    counter = counter if counter is not None else [0]
    if not isinstance(raw, list) or not raw:
        problems.append(gettext("the cascade tree is missing or empty."))
        return []
    if depth > MAX_TREE_DEPTH:
        problems.append(gettext("the cascade tree is deeper than %(limit)d levels.") % {"limit": MAX_TREE_DEPTH})
        return []
    out, seen = [], set()
    for item in raw:
        counter[0] += 1
        if counter[0] > MAX_TREE_NODES:
            problems.append(gettext("the cascade tree has more than %(limit)d options.") % {"limit": MAX_TREE_NODES})
            return out
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, str) or not value.strip() or len(value) > 100 or value.strip() in seen:
            problems.append(gettext("each cascade option needs a value of 1 to 100 characters, unique among "
                                    "its siblings."))
            continue
        value = value.strip()
        seen.add(value)
        node = {"value": value}
        if item.get("label") is not None:
            node["label"] = _labels_normalise(item["label"], problems, required=False, max_length=100)
        if item.get("children"):
            node["children"] = _tree_normalise(item["children"], problems, depth + 1, counter)
        out.append(node)
    return out


def _formula_normalise(raw, problems):
    bad = gettext("the formula needs “op” (mul, sum, months_since or days_between) and its fields.")
    if not isinstance(raw, Mapping):
        problems.append(bad)
        return {}
    op = raw.get("op")
    shape = {
        "mul": {"op", "fields", "places", "money"},
        "sum": {"op", "fields", "places", "money"},
        "months_since": {"op", "field"},
        "days_between": {"op", "fields"},
    }
    if op not in shape:
        problems.append(bad)
        return {}
    for name in sorted(map(str, set(raw) - shape[op])):
        problems.append(gettext("the formula setting “%(name)s” is not known.") % {"name": name})
    out = {"op": op}
    if op == "months_since":
        if not isinstance(raw.get("field"), str):
            problems.append(bad)
        out["field"] = raw.get("field")
        return out
    fields = raw.get("fields")
    wanted = {"mul": 2, "sum": 1, "days_between": 2}[op]
    if (not isinstance(fields, list) or len(fields) < wanted or (op == "days_between" and len(fields) != 2)
            or len(set(map(str, fields))) != len(fields) or not all(isinstance(k, str) for k in fields)):
        problems.append(bad)
        fields = []
    out["fields"] = list(fields)
    if raw.get("places") is not None:
        if not _small_int(raw["places"], 0, 6):
            problems.append(gettext("formula places must be a whole number from 0 to 6."))
        else:
            out["places"] = raw["places"]
    if raw.get("money") is not None:
        if not isinstance(raw["money"], bool):
            problems.append(gettext("formula money must be true or false."))
        elif raw["money"]:
            out["money"] = True
    return out


def _options_normalise(ftype, raw, problems):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(gettext("“options” must be an object."))
        raw = {}
    for name in sorted(map(str, set(raw) - ftype.options)):
        problems.append(gettext("the setting options.%(name)s does not apply to this type.") % {"name": name})
    out = {}
    if "choices" in ftype.options:
        out["choices"] = _choices_normalise(raw.get("choices"), problems)
    if "tree" in ftype.options:
        out["tree"] = _tree_normalise(raw.get("tree"), problems)
    if "formula" in ftype.options:
        out["formula"] = _formula_normalise(raw.get("formula"), problems)
    if "scale" in ftype.options:
        scale = raw.get("scale", 5)
        if not _small_int(scale, 2, 10):
            problems.append(gettext("options.scale must be a whole number from 2 to 10."))
            scale = 5
        out["scale"] = scale
    return out


def _field_normalise(raw, problems):
    if not isinstance(raw, Mapping):
        problems.append(gettext("a field must be an object."))
        return None
    for name in sorted(map(str, set(raw) - FIELD_SETTINGS)):
        problems.append(gettext("unknown setting “%(name)s”.") % {"name": name})
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(gettext("the key must start with a-z and contain only a-z, 0-9 and _ (at most 40)."))
    ftype = FIELD_TYPES.get(raw.get("type")) if isinstance(raw.get("type"), str) else None
    if ftype is None:
        problems.append(gettext("unknown type “%(type)s”.") % {"type": raw.get("type")})
        return None
    required = raw.get("required", False)
    if not isinstance(required, bool):
        problems.append(gettext("“required” must be true or false."))
    elif required and ftype.computed:
        problems.append(gettext("a computed field cannot be required."))
    public = raw.get("public", "hidden")
    staff = raw.get("staff", "view" if ftype.computed else "edit")
    if public not in PUBLIC_MODES:
        problems.append(gettext("“public” must be edit, view or hidden."))
    if staff not in STAFF_MODES:
        problems.append(gettext("“staff” must be edit or view."))
    if ftype.computed and "edit" in (public, staff):
        problems.append(gettext("a computed field cannot be edited; use view or hidden."))
    prefill = raw.get("prefill") or ""
    if prefill and prefill not in PREFILL_SOURCES:
        problems.append(gettext("unknown prefill source “%(source)s”.") % {"source": prefill})
    elif prefill and ftype.name not in PREFILL_SOURCES[prefill]:
        problems.append(gettext("%(source)s cannot fill a field of this type.") % {"source": prefill})
    field = {
        "key": key,
        "type": ftype.name,
        "label": _labels_normalise(raw.get("label"), problems, required=True, max_length=100),
        "help": _labels_normalise(raw.get("help"), problems, required=False, max_length=500),
        "required": required is True,
        "default": None,
        "validation": _validation_normalise(ftype, raw.get("validation"), problems),
        "options": _options_normalise(ftype, raw.get("options"), problems),
        "public": public,
        "staff": staff,
        "prefill": prefill,
    }
    default = raw.get("default")
    if default is not None and not problems:
        if ftype.clean is None or ftype.picker:
            # Picker ids differ between tenants, and a template travels between tenants as JSON.
            problems.append(gettext("this type cannot have a default."))
        elif not _blank(default):
            try:
                field["default"] = ftype.clean(field, default)
            except ValidationError as exc:
                problems.append(gettext("the default is not valid: %(error)s") % {"error": " ".join(exc.messages)})
    return field


def _formula_problems(field, by_key):
    formula = field["options"].get("formula") or {}
    refs = [formula["field"]] if formula.get("op") == "months_since" else formula.get("fields", [])
    kind = "date" if formula.get("op") in ("months_since", "days_between") else "number"
    problems = []
    for ref in refs:
        target = by_key.get(ref)
        if target is None or ref == field["key"]:
            problems.append(gettext("the formula refers to an unknown field “%(ref)s”.") % {"ref": ref})
        elif FIELD_TYPES[target["type"]].kind != kind or target["type"] == "computed":
            message = (gettext("the formula needs a number field, but “%(ref)s” is not one.") if kind == "number"
                       else gettext("the formula needs a date field, but “%(ref)s” is not one."))
            problems.append(message % {"ref": ref})
    return problems


def _problem(position, key, problem):
    shown = key if isinstance(key, str) and key else "?"
    return gettext("Field %(position)d (%(key)s): %(problem)s") % {"position": position, "key": shown,
                                                                    "problem": problem}


def schema_validate(fields):
    """Check a whole field list and return it normalised (every setting present, defaults
    filled in, validation defaults frozen in so a published version keeps today's rules).
    Raises ValidationError with one message per problem, each naming the field's position and key."""
    if not isinstance(fields, list | tuple):
        raise ValidationError(gettext("The field list must be a list."))
    if len(fields) > MAX_FIELDS:
        raise ValidationError(gettext("A template has at most %(limit)d fields.") % {"limit": MAX_FIELDS})
    errors, normalised, positions, seen = [], [], {}, set()
    for position, raw in enumerate(fields, start=1):
        problems = []
        field = _field_normalise(raw, problems)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(key, str) and key in seen:
            problems.append(gettext("the key “%(key)s” is used twice.") % {"key": key})
        seen.add(key)
        errors.extend(_problem(position, key, p) for p in problems)
        if field is not None:
            normalised.append(field)
            positions[id(field)] = position
    by_key = {f["key"]: f for f in normalised}
    for field in normalised:
        if field["type"] == "computed":
            errors.extend(_problem(positions[id(field)], field["key"], p) for p in _formula_problems(field, by_key))
    if errors:
        raise ValidationError(errors)
    return normalised
