"""The template builder's field editor: `FieldForm` (one custom field as the builder edits it),
the settings each field type offers (`SETTING_TYPES`), and the text formats of choices and
cascade trees ("value|中文|English" lines, indented children). tickets.fields holds the schema
itself; this module turns the editor's inputs into it and back."""

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import fields as schema
from .identifiers import IDENTIFIER_ERROR, IDENTIFIER_HELP, identifier_from_name


def _types_with(attribute, name):
    return tuple(t for t, ftype in schema.FIELD_TYPES.items() if name in getattr(ftype, attribute))


# Which settings apply to which field types (the editor shows only those; the rest are dropped).
SETTING_TYPES = {
    "min_length": _types_with("validation", "min_length"),
    "max_length": _types_with("validation", "max_length"),
    "regex": _types_with("validation", "regex"),
    "min": _types_with("validation", "min"),
    "max": _types_with("validation", "max"),
    "decimal_places": _types_with("validation", "decimal_places"),
    "max_size_mb": _types_with("validation", "max_size_mb"),
    "max_files": _types_with("validation", "max_files"),
    "extensions": _types_with("validation", "extensions"),
    "choices": _types_with("options", "choices"),
    "tree": _types_with("options", "tree"),
    "formula_op": _types_with("options", "formula"),
    "formula_fields": _types_with("options", "formula"),
    "formula_places": _types_with("options", "formula"),
    "formula_money": _types_with("options", "formula"),
    "scale": _types_with("options", "scale"),
    "default": tuple(t for t, ftype in schema.FIELD_TYPES.items()
                     if ftype.clean is not None and not ftype.picker),
    "prefill": tuple(sorted({t for types in schema.PREFILL_SOURCES.values() for t in types})),
    "required": tuple(t for t, ftype in schema.FIELD_TYPES.items() if not ftype.computed),
}
FORMULA_OPS = [
    ("", "---------"),
    ("mul", _("Multiply (quantity × price)")),
    ("sum", _("Add up")),
    ("months_since", _("Months since a date (age in months)")),
    ("days_between", _("Days between two dates")),
]


def _choice_line_parse(line, number):
    parts = [part.strip() for part in line.split("|")]
    if len(parts) > 3 or not parts[0]:
        raise forms.ValidationError(
            _("Line %(n)d: write value|中文|English (the labels are optional).") % {"n": number}
        )
    item = {"value": parts[0]}
    labels = {lang: text for lang, text in zip(("zh-hans", "en"), parts[1:], strict=False) if text}
    if labels:
        item["label"] = labels
    return item


def _choice_line(item):
    label = item.get("label") or {}
    zh, en = label.get("zh-hans", ""), label.get("en", "")
    if en:
        return f"{item['value']}|{zh}|{en}"
    return item["value"] if zh in ("", item["value"]) else f"{item['value']}|{zh}"


def choices_parse(text):
    """ "value|中文|English" per line -> the schema's choices list."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return [_choice_line_parse(line, n) for n, line in lines]


def tree_parse(text):
    """Indented lines ("value|中文|English", children indented below their parent) -> a cascade tree."""
    roots, stack, root_indent = [], [], None  # stack: (indent, node) of the current line's ancestors
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace("\t", "    ").rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        node = _choice_line_parse(line.strip(), number)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack:
            parent = stack[-1][1]
            if parent.setdefault("_indent", indent) != indent:
                raise forms.ValidationError(
                    _("Line %(n)d: indent it like the other options at its level.") % {"n": number}
                )
            parent.setdefault("children", []).append(node)
        else:
            if root_indent is None:
                root_indent = indent
            elif indent != root_indent:
                raise forms.ValidationError(
                    _("Line %(n)d: indent it like the other options at its level.") % {"n": number}
                )
            roots.append(node)
        stack.append((indent, node))

    def strip(nodes):
        for node in nodes:
            node.pop("_indent", None)
            strip(node.get("children", []))
        return nodes

    return strip(roots)


def tree_lines(nodes, depth=0):
    lines = []
    for node in nodes:
        lines.append("  " * depth + _choice_line(node))
        lines.extend(tree_lines(node.get("children", []), depth + 1))
    return lines


def _bound_value(text):
    """A min/max setting as typed: whole numbers stay numbers; dates, times, decimals stay text."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d{1,15}", text):
        return int(text)
    return text


def _default_text(field):
    value = field.get("default")
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        if field["type"] == "multiselect":
            return ", ".join(map(str, value))
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class FieldForm(forms.Form):
    """One custom field as the builder edits it. `field_dict()` turns the inputs into the schema's
    field definition; tickets.fields.schema_validate (through the draft services) has the last word."""

    original_key = forms.CharField(required=False, widget=forms.HiddenInput)
    type = forms.ChoiceField(label=_("Type"))
    key = forms.CharField(label=_("Key"), max_length=40, required=False, help_text=IDENTIFIER_HELP)
    label_zh = forms.CharField(label=_("Label (中文)"), max_length=100)
    label_en = forms.CharField(label=_("Label (English)"), max_length=100, required=False)
    help_zh = forms.CharField(label=_("Help text (中文)"), max_length=500, required=False)
    help_en = forms.CharField(label=_("Help text (English)"), max_length=500, required=False)
    required = forms.BooleanField(label=_("Required"), required=False)
    public = forms.ChoiceField(
        label=_("Public form"), initial="edit",
        choices=[("edit", _("Customer fills it in")), ("view", _("Customer sees it")), ("hidden", _("Hidden"))],
    )
    staff = forms.ChoiceField(label=_("Staff"), initial="edit",
                              choices=[("edit", _("Staff can edit")), ("view", _("Staff can only view"))])
    default = forms.CharField(label=_("Default value"), max_length=2000, required=False)
    prefill = forms.ChoiceField(label=_("Prefill from"), required=False)
    min_length = forms.IntegerField(label=_("Minimum length"), required=False, min_value=0)
    max_length = forms.IntegerField(label=_("Maximum length"), required=False, min_value=1)
    regex = forms.CharField(label=_("Pattern (regular expression)"), max_length=200, required=False,
                            help_text=_("e.g. ^[A-Z]{2}\\d{6}$ for two letters and six digits."),
                            strip=False)
    min = forms.CharField(label=_("Minimum"), max_length=40, required=False,
                          help_text=_("A number, a date (2025-01-01), a time (08:30), or today / now."))
    max = forms.CharField(label=_("Maximum"), max_length=40, required=False)
    decimal_places = forms.IntegerField(label=_("Decimal places"), required=False, min_value=0, max_value=10)
    choices = forms.CharField(
        label=_("Choices"), required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One option per line, e.g. 退款 then 换货. Advanced: value|中文|English, e.g. "
                    "refund|退款|Refund, to give a fixed value and an English label."),
    )
    tree = forms.CharField(
        label=_("Options tree"), required=False, max_length=100000, widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("One option per line, each level indented two spaces below its parent, e.g. 浙江省 then "
                    "“  杭州市”."),
    )
    formula_op = forms.ChoiceField(label=_("Formula"), choices=FORMULA_OPS, required=False)
    formula_fields = forms.CharField(label=_("Formula fields"), max_length=300, required=False,
                                     help_text=_("Keys of the fields it uses, separated by commas, e.g. qty, price."))
    formula_places = forms.IntegerField(label=_("Round to decimal places"), required=False, min_value=0,
                                        max_value=6)
    formula_money = forms.BooleanField(label=_("Result is money (2 decimal places)"), required=False)
    scale = forms.IntegerField(label=_("Rating scale (stars)"), required=False, min_value=2, max_value=10,
                               initial=5)
    max_size_mb = forms.IntegerField(label=_("Largest file (MB)"), required=False, min_value=1, max_value=50)
    max_files = forms.IntegerField(label=_("Most files"), required=False, min_value=1, max_value=20)
    extensions = forms.CharField(label=_("Allowed file types"), max_length=300, required=False,
                                 help_text=_("Extensions separated by commas, e.g. pdf, jpg, png."))

    SECTIONS = (
        (_("Field"), ("type", "key", "label_zh", "label_en", "help_zh", "help_en", "required", "public", "staff")),
        (_("Values"), ("default", "prefill", "choices", "tree", "formula_op", "formula_fields", "formula_places",
                       "formula_money", "scale")),
        (_("Validation"), ("min_length", "max_length", "regex", "min", "max", "decimal_places", "max_size_mb",
                           "max_files", "extensions")),
    )
    WIDE = frozenset({"choices", "tree", "regex", "help_zh", "help_en", "extensions", "formula_fields"})

    def __init__(self, *args, existing_keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.existing_keys = set(existing_keys)
        self.fields["type"].choices = [(name, f"{ftype.label} · {name}") for name, ftype in
                                       schema.FIELD_TYPES.items()]
        self.fields["prefill"].choices = [("", "---------"), *((s, s) for s in schema.PREFILL_SOURCES)]
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            css = ("form-check-input" if isinstance(widget, forms.CheckboxInput)
                   else "form-select" if isinstance(widget, forms.Select) else "form-control")
            widget.attrs["class"] = css
            if name in SETTING_TYPES:
                widget.attrs["data-types"] = " ".join(SETTING_TYPES[name])
        self.fields["key"].widget.attrs.update(autocapitalize="none", spellcheck="false", pattern="[a-z][a-z0-9_]*")
        self.fields["regex"].widget.attrs.update(spellcheck="false")
        self.fields["choices"].widget.attrs.update(placeholder="退款\n换货\n维修")
        self.fields["tree"].widget.attrs.update(placeholder="浙江省|浙江|Zhejiang\n  杭州市\n  宁波市")

    @classmethod
    def initial_for(cls, field):
        """The editor's initial values for a stored (normalised) field."""
        validation, options = field.get("validation") or {}, field.get("options") or {}
        formula = options.get("formula") or {}
        label, help_text = field.get("label") or {}, field.get("help") or {}
        formula_fields = [formula["field"]] if formula.get("op") == "months_since" else formula.get("fields", [])
        return {
            "original_key": field["key"], "type": field["type"], "key": field["key"],
            "label_zh": label.get("zh-hans", ""), "label_en": label.get("en", ""),
            "help_zh": help_text.get("zh-hans", ""), "help_en": help_text.get("en", ""),
            "required": field.get("required", False), "public": field.get("public"), "staff": field.get("staff"),
            "default": _default_text(field), "prefill": field.get("prefill", ""),
            **{name: validation.get(name) for name in ("min_length", "max_length", "regex", "decimal_places",
                                                       "max_size_mb", "max_files")},
            **{name: "" if validation.get(name) is None else str(validation[name]) for name in ("min", "max")},
            "extensions": ", ".join(validation.get("extensions", [])),
            "choices": "\n".join(_choice_line(c) for c in options.get("choices", [])),
            "tree": "\n".join(tree_lines(options.get("tree", []))),
            "formula_op": formula.get("op", ""), "formula_fields": ", ".join(formula_fields),
            "formula_places": formula.get("places"), "formula_money": bool(formula.get("money")),
            "scale": options.get("scale", 5),
        }

    def sections(self):
        """(title, [(bound field, the types it applies to or "", wide?)]) for the template."""
        return [
            (title, [(self[name], " ".join(SETTING_TYPES.get(name, ())), name in self.WIDE) for name in names])
            for title, names in self.SECTIONS
        ]

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if not key:  # made from the label in clean(), once the label is known
            return key
        if not schema.KEY_RE.match(key):
            raise forms.ValidationError(IDENTIFIER_ERROR)
        if key in self.existing_keys and key != self.data.get(self.add_prefix("original_key"), ""):
            raise forms.ValidationError(_("Another field already uses the key “%(key)s”.") % {"key": key})
        return key

    def _key_from_label(self, cleaned):
        """The key for a field left without one: the pinyin of its Chinese label, with a suffix
        when another field of the template has it already."""
        original = self.data.get(self.add_prefix("original_key"), "")
        label = (cleaned.get("label_zh") or cleaned.get("label_en") or "").strip()
        if label:
            cleaned["key"] = identifier_from_name(label, taken=self.existing_keys - {original}, fallback="field")

    def _applies(self, name):
        return self.cleaned_data.get("type") in SETTING_TYPES[name]

    def clean_choices(self):
        text = self.cleaned_data.get("choices", "")
        return choices_parse(text) if self.cleaned_data.get("type") in SETTING_TYPES["choices"] else []

    def clean_tree(self):
        text = self.cleaned_data.get("tree", "")
        return tree_parse(text) if self.cleaned_data.get("type") in SETTING_TYPES["tree"] else []

    def clean(self):
        """The common mistakes as errors next to their inputs; schema_validate checks the rest."""
        cleaned = super().clean()
        if "key" in cleaned and not cleaned["key"]:
            self._key_from_label(cleaned)
        ftype = schema.FIELD_TYPES.get(cleaned.get("type"))
        if ftype is None:
            return cleaned
        low, high = cleaned.get("min_length"), cleaned.get("max_length")
        if self._applies("min_length") and low is not None and high is not None and low > high:
            self.add_error("max_length", _("The maximum length is smaller than the minimum length."))
        regex = (cleaned.get("regex") or "").strip()
        if self._applies("regex") and regex:
            try:
                re.compile(regex)
            except re.error as exc:
                self.add_error("regex", _("This is not a valid regular expression: %(error)s.") % {"error": exc})
        if self._applies("min") and ftype.parse_bound is not None:
            bounds = {}
            for name in ("min", "max"):
                text = (cleaned.get(name) or "").strip()
                if not text or text in ("today", "now"):
                    continue
                try:
                    bounds[name] = ftype.parse_bound(_bound_value(text))
                except ValidationError:
                    self.add_error(name, _("Enter a value of the field's type, e.g. 10, 2025-01-01 or 08:30."))
            if len(bounds) == 2 and bounds["min"] > bounds["max"]:
                self.add_error("max", _("The maximum is smaller than the minimum."))
        return cleaned

    def field_dict(self):
        """The field definition for the draft (only the settings its type knows)."""
        data = self.cleaned_data
        ftype = data["type"]
        field = {
            "key": data["key"], "type": ftype,
            "label": {lang: data[name].strip() for lang, name in (("zh-hans", "label_zh"), ("en", "label_en"))
                      if data[name].strip()},
            "help": {lang: data[name].strip() for lang, name in (("zh-hans", "help_zh"), ("en", "help_en"))
                     if data[name].strip()},
            "public": data["public"], "staff": data["staff"],
        }
        if schema.FIELD_TYPES[ftype].computed:
            # A computed field is never typed in: "edit" can only mean "show it".
            field["public"] = "view" if field["public"] == "edit" else field["public"]
            field["staff"] = "view"
        else:
            field["required"] = data["required"]
        if self._applies("prefill") and data["prefill"]:
            field["prefill"] = data["prefill"]
        if self._applies("default") and data["default"].strip():
            field["default"] = self._default_value(ftype, data["default"].strip())
        validation = {}
        for name in ("min_length", "max_length", "decimal_places", "max_size_mb", "max_files"):
            if self._applies(name) and data[name] is not None:
                validation[name] = data[name]
        if self._applies("regex") and data["regex"].strip():
            validation["regex"] = data["regex"].strip()
        for name in ("min", "max"):
            if self._applies(name) and data[name].strip():
                validation[name] = _bound_value(data[name])
        if self._applies("extensions") and data["extensions"].strip():
            validation["extensions"] = [e.strip().lower() for e in re.split(r"[,，\s]+", data["extensions"])
                                        if e.strip()]
        options = {}
        if self._applies("choices"):
            options["choices"] = data["choices"]
        if self._applies("tree"):
            options["tree"] = data["tree"]
        if self._applies("scale"):
            options["scale"] = data["scale"] if data["scale"] is not None else 5
        if self._applies("formula_op"):
            refs = [k.strip() for k in re.split(r"[,，\s]+", data["formula_fields"]) if k.strip()]
            formula = {"op": data["formula_op"]}
            if data["formula_op"] == "months_since":
                formula["field"] = refs[0] if refs else ""
            else:
                formula["fields"] = refs
            if data["formula_op"] in ("mul", "sum"):
                if data["formula_places"] is not None:
                    formula["places"] = data["formula_places"]
                if data["formula_money"]:
                    formula["money"] = True
            options["formula"] = formula
        if validation:
            field["validation"] = validation
        if options:
            field["options"] = options
        return field

    @staticmethod
    def _default_value(ftype, text):
        if ftype == "multiselect":
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    return text
            return [part.strip() for part in re.split(r"[,，]", text) if part.strip()]
        if ftype == "address" and text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text
