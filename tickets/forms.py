"""Forms of the ticket pages. The custom fields' form comes from tickets.fields.form_class_for;
these are the fixed parts around it (contact, comment, assignment, split, merge, settings)."""

import datetime
import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin, ConfigImportForm, StaffChoiceField, scoped_formfield, staff_users
from scrm.phone import phone_normalize
from scrm.selectors import customer_get, opportunity_get

from . import fields as schema
from .models import ClassificationRule, Priority, TicketTemplate
from .selectors import category_list, template_list
from .services.config import PREFIX_RE

MAX_UPLOAD_FILES = 5


class ContactForm(BootstrapFormMixin, forms.Form):
    """Who is asking, on the public form: the phone links or creates the customer."""

    contact_name = forms.CharField(label=_("Your name"), max_length=60)
    contact_phone = forms.CharField(label=_("Mobile number"), max_length=24)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_phone"].widget.attrs.update(inputmode="tel", autocomplete="tel", placeholder="13812345678")
        self.fields["contact_name"].widget.attrs.update(autocomplete="name")

    def clean_contact_phone(self):
        return phone_normalize(self.cleaned_data["contact_phone"])


class StaffTicketForm(BootstrapFormMixin, forms.Form):
    """The fixed part of the staff 'new ticket' form (phone calls, walk-ins), and what the ticket
    links to among what `user` may see: the opportunity the page was opened for (`opportunity_id`,
    from ?opportunity=; its customer comes with it), otherwise the customer picked (the hidden
    customer_id, first filled from ?customer=). One the user may not see (another tenant's or
    region's, or gone) is an error, never dropped; `customer` and `opportunity` are the objects."""

    title = forms.CharField(label=_("Title"), max_length=200, required=False,
                            help_text=_("Leave empty to name it after the template and customer."))
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  max_length=10000)
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)
    source = forms.ChoiceField(label=_("Channel"), choices=[("phone", _("Phone")), ("staff", _("Walk-in / staff"))])
    customer_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    customer_name = forms.CharField(label=_("Customer name"), max_length=60, required=False)
    customer_phone = forms.CharField(label=_("Customer phone"), max_length=24, required=False)

    def __init__(self, *args, user, opportunity_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.opportunity_id = opportunity_id
        self.opportunity = opportunity_get(user=user, pk=opportunity_id) if opportunity_id else None
        self.customer = self.opportunity.customer if self.opportunity else None
        if not self.is_bound and self.customer is None and self.initial.get("customer_id"):
            self.customer = customer_get(user=user, pk=self.initial["customer_id"])

    @property
    def links_missing(self):
        """An unbound form opened for an opportunity or customer the user may not see."""
        if self.opportunity_id:
            return self.opportunity is None
        return bool(self.initial.get("customer_id")) and self.customer is None

    def clean_customer_id(self):
        pk = self.cleaned_data.get("customer_id")
        if pk is not None and not self.opportunity_id:  # an opportunity brings its customer
            self.customer = customer_get(user=self.user, pk=pk)
            if self.customer is None:
                raise ValidationError(
                    _("This customer does not exist or you may not see it; search again or enter a phone number."),
                    code="not_visible",
                )
        return pk

    def clean_customer_phone(self):
        raw = self.cleaned_data.get("customer_phone")
        return phone_normalize(raw) if raw else ""

    def clean(self):
        cleaned = super().clean()
        if self.opportunity_id and self.opportunity is None:
            self.add_error(None, ValidationError(_("This opportunity does not exist or you may not see it."),
                                                 code="not_visible"))
        elif (self.customer is None and not cleaned.get("customer_phone")
              and not self.has_error("customer_id") and not self.has_error("customer_phone")):
            self.add_error("customer_phone", _("Pick a customer or enter a phone number to create one."))
        return cleaned


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class CommentForm(BootstrapFormMixin, forms.Form):
    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), max_length=10000,
                           required=False)
    is_public = forms.BooleanField(label=_("Visible to the customer"), required=False)
    files = MultipleFileField(label=_("Attachments"), required=False)

    def clean(self):
        cleaned = super().clean()
        uploads = cleaned.get("files") or []
        if len(uploads) > MAX_UPLOAD_FILES:
            self.add_error("files", _("At most %(n)d files at once.") % {"n": MAX_UPLOAD_FILES})
        if not cleaned.get("body") and not uploads and "files" not in self.errors:
            self.add_error("body", _("Write a comment or attach a file."))
        return cleaned


class CustomerReplyForm(BootstrapFormMixin, forms.Form):
    body = forms.CharField(label=_("Add a message"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class AssignForm(BootstrapFormMixin, forms.Form):
    assignee = StaffChoiceField(queryset=None, required=False, label=_("Assignee"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = staff_users()


class DepartForm(BootstrapFormMixin, forms.Form):
    """"On my way": when the engineer expects to arrive (today or later)."""

    eta = forms.DateTimeField(label=_("Expected arrival"),
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                              input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])

    def clean_eta(self):
        eta, now = self.cleaned_data["eta"], timezone.now()
        if eta < now - datetime.timedelta(minutes=5) or eta > now + datetime.timedelta(days=30):
            raise forms.ValidationError(_("Give an arrival time between now and 30 days ahead."))
        return eta


class SplitForm(BootstrapFormMixin, forms.Form):
    titles = forms.CharField(
        label=_("Child tickets"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000,
        help_text=_("One title per line; each line becomes a child ticket."),
    )
    template = forms.ModelChoiceField(queryset=None, required=False, label=_("Template for the children"),
                                      empty_label=_("Same as this ticket"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = template_list(active_only=True).filter(current_version__isnull=False)

    def clean_titles(self):
        lines = [line.strip() for line in self.cleaned_data["titles"].splitlines() if line.strip()]
        if not lines:
            raise forms.ValidationError(_("Give at least one child ticket."))
        if len(lines) > 20:
            raise forms.ValidationError(_("At most 20 child tickets at once."))
        if any(len(line) > 200 for line in lines):
            raise forms.ValidationError(_("Each title may have at most 200 characters."))
        return lines


class MergeForm(BootstrapFormMixin, forms.Form):
    target_number = forms.CharField(label=_("Merge into ticket number"), max_length=32)


DEFAULT_CATEGORY_NAMES = ("咨询", "投诉", "预定", "售后", "安装", "维修", "巡检")


class TemplateSettingsForm(BootstrapFormMixin, forms.ModelForm):
    new_category = forms.CharField(
        label=_("…or a new category"), max_length=30, required=False,
        help_text=_("Type a name such as 投诉 or 巡检 to create it."),
    )

    class Meta:
        model = TicketTemplate
        fields = ["name", "slug", "category", "new_category", "description", "default_priority", "number_prefix",
                  "is_public", "is_active"]
        formfield_callback = scoped_formfield
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "slug": _("Letters, digits, - and _; the public form's address ends with it."),
            "is_public": _("Once published, customers can submit it on the public web form (its address ends with "
                           "the slug)."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = category_list()
        self.fields["category"].required = False
        self.fields["new_category"].widget.attrs["list"] = "category-names"
        self.fields["number_prefix"].widget.attrs.update(style="text-transform: uppercase", autocapitalize="characters")

    def clean_number_prefix(self):
        prefix = (self.cleaned_data.get("number_prefix") or "").strip().upper()
        if not PREFIX_RE.match(prefix):
            raise forms.ValidationError(_("Use 1 to 8 letters A–Z, e.g. WX."))
        return prefix

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("category") and not (cleaned.get("new_category") or "").strip():
            self.add_error("category", _("Pick a category or type a new one."))
        return cleaned

    def _get_validation_exclusions(self):
        # A new category is created by the view (a write) after validation: until then the
        # template has none, which the model check must not report.
        excluded = super()._get_validation_exclusions()
        if not self.cleaned_data.get("category"):
            excluded.add("category")
        return excluded


class TemplateImportForm(ConfigImportForm):
    """A template file exported as JSON or YAML."""

    file = forms.FileField(label=_("JSON or YAML file"), help_text=_("A file exported from a template (.json, .yaml)."))
    alias_error = _("YAML aliases (*name) are not allowed in a template file.")

    def payload_check(self, payload):
        if not isinstance(payload, dict):
            raise forms.ValidationError(_("The file does not describe a ticket template."))


# --- the builder's field editor -----------------------------------------------------------

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
    key = forms.CharField(
        label=_("Key"), max_length=40,
        help_text=_("a-z, 0-9 and _, starting with a letter; how the API and exports name it."),
    )
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
        help_text=_("One per line: value|中文|English, e.g. refund|退款|Refund."),
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
        self.fields["choices"].widget.attrs.update(placeholder="refund|退款|Refund\nrepair|维修|Repair")
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
        if not schema.KEY_RE.match(key):
            raise forms.ValidationError(
                _("Start with a-z and use only a-z, 0-9 and _ (at most 40), e.g. order_no.")
            )
        if key in self.existing_keys and key != self.data.get(self.add_prefix("original_key"), ""):
            raise forms.ValidationError(_("Another field already uses the key “%(key)s”.") % {"key": key})
        return key

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


class ApiKeyForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60, help_text=_("Who uses it, e.g. 小程序 or ERP."))


class RuleForm(BootstrapFormMixin, forms.ModelForm):
    keywords_text = forms.CharField(label=_("Keywords"), max_length=1000,
                                    help_text=_("Separate with commas, e.g. 投诉, 退费, 报修"))
    tags_text = forms.CharField(label=_("Add tags"), max_length=300, required=False,
                                help_text=_("Separate with commas."))

    class Meta:
        model = ClassificationRule
        fields = ["name", "keywords_text", "match", "set_template", "set_category", "set_priority", "tags_text",
                  "order", "is_active"]
        formfield_callback = scoped_formfield

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["set_template"].queryset = template_list()
        self.fields["set_category"].queryset = category_list()
        if self.instance.pk:
            self.fields["keywords_text"].initial = ", ".join(self.instance.keywords)
            self.fields["tags_text"].initial = ", ".join(t.name for t in self.instance.add_tags.all())


class RuleTestForm(BootstrapFormMixin, forms.Form):
    text = forms.CharField(label=_("Text of a request"), widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)
