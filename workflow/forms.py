"""Forms of the workflow pages: the designer's node and transition editors (they build the
graph's plain data — handler rules, field permissions, structured conditions; nobody writes
code), the import form, and the extra inputs of a task's actions. Choice querysets come from
the tenant in scope, so another tenant's id is simply not a valid choice."""

import json
import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from scrm.forms import BootstrapFormMixin, ConfigImportForm
from tickets import fields as schema
from tickets.identifiers import IDENTIFIER_ERROR, IDENTIFIER_HELP, identifier_from_name
from tickets.models import TicketTemplate

from .actions import ACTIONS as AUTO_ACTIONS
from .conditions import FIELDS as CONDITION_FIELDS
from .graph import ACTIONS, DEFAULT_ACTIONS, HUMAN_KINDS, KEY_RE
from .policy import SIGNOFF_KINDS
from .routing import RULES

KIND_LABELS = {
    "start": _("Start"), "task": _("Task (one handler)"), "approval": _("Approval (approve / reject)"),
    "countersign": _("Countersign (several handlers)"), "split": _("Parallel split"), "join": _("Join (merge)"),
    "condition": _("Branch (condition)"), "auto": _("Automatic action"), "end": _("End"),
}
ACTION_LABELS = {
    "submit": _("Submit"), "approve": _("Approve"), "reject": _("Reject"), "return": _("Return"),
    "transfer": _("Transfer"), "cohandle": _("Add co-handler"), "split": _("Split ticket"), "close": _("Close ticket"),
}
KIND_SHORT = {
    "start": pgettext_lazy("workflow node kind", "Start"), "task": pgettext_lazy("workflow node kind", "Task"),
    "approval": pgettext_lazy("workflow node kind", "Approval"),
    "countersign": pgettext_lazy("workflow node kind", "Countersign"),
    "split": pgettext_lazy("workflow node kind", "Parallel"), "join": pgettext_lazy("workflow node kind", "Join"),
    "condition": pgettext_lazy("workflow node kind", "Branch"), "auto": pgettext_lazy("workflow node kind", "Auto"),
    "end": pgettext_lazy("workflow node kind", "End"),
}
OP_LABELS = {
    "=": _("equals"), "!=": _("does not equal"), ">": _("greater than"), ">=": _("at least"), "<": _("less than"),
    "<=": _("at most"), "in": _("is one of"), "not_in": _("is none of"), "contains": _("contains"),
    "empty": _("is empty"), "not_empty": _("is not empty"),
}
CONDITION_FIELD_LABELS = {
    "priority": _("Priority"), "source": _("Source"), "status": _("Status"), "category": _("Category code"),
    "template": _("Template slug"), "customer.tier": _("Customer tier"), "customer.tags": _("Customer tags"),
    "opportunity.amount": _("Opportunity amount"), "opportunity.stage": _("Opportunity stage"),
    "store.code": _("Store code"), "region.code": _("Region code"),
    "region.settlement_class": _("Region settlement class"),
}
RULE_PREFIXES = ("handler", "backup", "extra1", "extra2", "extra3")
# Marks a rule select whose kind's parameters are wrong: the parameters show their own errors.
_PARAMS_INVALID = "params-invalid"
MAX_PARAMS = 4000
MAX_VALUE = 200
_INT_RE = re.compile(r"^-?\d{1,15}$")


def template_fields(template):
    """The fields a workflow of this template can refer to: the published version's, else the draft's."""
    version = template.current_version
    fields = version.fields if version is not None else template.draft_fields
    return [f for f in fields or [] if isinstance(f, dict) and f.get("key")]


def _multi(label, choices, help_text=""):
    return forms.MultipleChoiceField(label=label, choices=choices, required=False, help_text=help_text,
                                     widget=forms.CheckboxSelectMultiple)


class NodeForm(BootstrapFormMixin, forms.Form):
    """One node of the draft. `clean()` leaves the node's plain data in `self.node`."""

    original_key = forms.CharField(required=False, widget=forms.HiddenInput)
    key = forms.CharField(label=_("Key"), max_length=40, required=False, help_text=IDENTIFIER_HELP)
    kind = forms.ChoiceField(label=_("Kind"), choices=list(KIND_LABELS.items()))
    name_zh = forms.CharField(label=_("Name (Chinese)"), max_length=60)
    name_en = forms.CharField(label=_("Name (English)"), max_length=60, required=False)
    time_limit = forms.IntegerField(label=_("Time limit (minutes)"), min_value=1, max_value=525600, required=False,
                                    help_text=_("The task is due this long after it starts (overdue → 超时)."))
    mode = forms.ChoiceField(label=_("Countersign mode"), required=False,
                             choices=[("all", _("Everyone must finish")), ("any", _("Any N of them"))])
    n = forms.IntegerField(label=_("N"), min_value=1, max_value=50, required=False)
    visible = forms.MultipleChoiceField(required=False)
    editable = forms.MultipleChoiceField(required=False)
    required = forms.MultipleChoiceField(required=False)
    unlock = forms.MultipleChoiceField(required=False)
    actions = _multi(_("Allowed actions"), list(ACTION_LABELS.items()),
                     _("Leave all unticked for the usual actions of the kind."))
    waiting = forms.BooleanField(label=_("The ticket waits on the customer while at this node"), required=False)
    parts_reserve = forms.BooleanField(label=_("Reserve the ticket's spare parts on entering this node"),
                                       required=False)
    parts_consume = forms.BooleanField(label=_("Consume the reserved spare parts when this node's task is done"),
                                       required=False)
    auto_action = forms.ChoiceField(label=_("Automatic action"), required=False)
    params = forms.CharField(label=_("Parameters (JSON object)"), required=False, max_length=MAX_PARAMS,
                             widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
                             help_text=_('E.g. {"values": {"result": "ok"}} for set_fields, '
                                         '{"url": "https://…", "secret": "…"} for webhook.'))

    def __init__(self, data=None, *, fields, initial=None, taken_keys=(), **kwargs):
        self.template_fields = fields
        self.taken_keys = set(taken_keys)  # the draft's node keys: a key made from the name avoids them
        super().__init__(data, initial=initial, **kwargs)
        field_choices = [(f["key"], f"{schema.field_label(f)} ({f['key']})") for f in fields]
        for name, label, help_text in (
            ("visible", _("Visible fields (read-only)"), ""),
            ("editable", _("Editable fields"), ""),
            ("required", _("Required before submitting"), _("Must also be editable here (or unlocked).")),
            ("unlock", _("Financial fields unlocked here"),
             _("Editable only at this node: for amounts that must not change elsewhere.")),
        ):
            self.fields[name] = _multi(label, field_choices, help_text)
        for prefix in RULE_PREFIXES:
            self.fields[f"{prefix}_rule"] = forms.ChoiceField(
                label=_("Rule"), required=False, choices=[("", "—"), *((k, r.label) for k, r in RULES.items())])
        self.fields["auto_action"].choices = [("", "—")] + [(name, name) for name in sorted(AUTO_ACTIONS)]
        # The BootstrapFormMixin ran before the fields above existed.
        for name, field in self.fields.items():
            if name.endswith("_rule") or name in ("auto_action",):
                field.widget.attrs.setdefault("class", "form-select form-select-sm")
        self.rule_forms = {prefix: self._rule_forms(prefix, data) for prefix in RULE_PREFIXES}
        self.node = None

    def _rule_forms(self, prefix, data):
        """Every registered kind's parameter form for one rule slot, named `<slot>-<kind>-<param>`
        (e.g. handler-role-scope), so kinds never share an input. Unbound forms start from the
        slot's rule when it is of their kind."""
        rule = (self.initial or {}).get(f"{prefix}_params") or {}
        forms_ = {}
        for name, kind in RULES.items():
            if kind.form_class is None:
                continue
            initial = kind.form_data(rule) if rule.get("rule") == name else None
            form = kind.form_class(data, initial=initial, prefix=f"{prefix}-{name}", auto_id="node-%s")
            for field in form.fields.values():
                widget = field.widget
                if isinstance(widget, (forms.CheckboxSelectMultiple, forms.RadioSelect)):
                    continue
                css = ("form-check-input" if isinstance(widget, forms.CheckboxInput) else
                       "form-select form-select-sm" if isinstance(widget, (forms.Select, forms.SelectMultiple))
                       else "form-control form-control-sm")
                widget.attrs["class"] = (widget.attrs.get("class", "") + " " + css).strip()
            forms_[name] = form
        return forms_

    # --- loading a node into the form ---

    @classmethod
    def initial_for(cls, node):
        name = node.get("name") or ""
        initial = {
            "original_key": node.get("key", ""), "key": node.get("key", ""), "kind": node.get("kind", "task"),
            "name_zh": name.get("zh-hans", "") if isinstance(name, dict) else name,
            "name_en": name.get("en", "") if isinstance(name, dict) else "",
            "time_limit": node.get("time_limit"), "mode": node.get("mode", "all"), "n": node.get("n"),
            "actions": node.get("actions") or [], "unlock": node.get("unlock") or [],
            "waiting": node.get("status") == "waiting", "auto_action": node.get("action", ""),
            "parts_reserve": bool((node.get("parts") or {}).get("reserve")),
            "parts_consume": bool((node.get("parts") or {}).get("consume")),
            "params": json.dumps(node["params"], ensure_ascii=False) if node.get("params") else "",
        }
        spec = node.get("fields") if isinstance(node.get("fields"), dict) else {}
        for part in ("visible", "editable", "required"):
            initial[part] = spec.get(part) or []
        rules = {"handler": node.get("handler"), "backup": node.get("backup")}
        if node.get("kind") == "countersign":
            handlers = [r for r in node.get("handlers") or [] if isinstance(r, dict)]
            for prefix, rule in zip(("handler", "extra1", "extra2", "extra3"), handlers, strict=False):
                rules[prefix] = rule
        for prefix, rule in rules.items():
            if isinstance(rule, dict):
                initial.update({f"{prefix}_rule": rule.get("rule", ""), f"{prefix}_params": rule})
        return initial

    def rule_groups(self):
        """The handler rule editors, for the template: per slot its label, the kind select with
        its errors, and every kind's parameter form (the page shows the chosen kind's)."""
        labels = {"handler": _("Handler"), "backup": _("Backup handler (AB角)"), "extra1": _("Countersigner 2"),
                  "extra2": _("Countersigner 3"), "extra3": _("Countersigner 4")}
        # A countersign's first slot is its first signer, not "the handler" (the page shows the
        # label of the chosen kind).
        signer = {"handler": _("Countersigner 1")}
        return [{"prefix": p, "label": labels[p], "signer_label": signer.get(p), "rule": self[f"{p}_rule"],
                 "errors": [e for e in self.errors.get(f"{p}_rule", []) if e != _PARAMS_INVALID],
                 "kinds": [{"name": name, "fields": list(form)} for name, form in self.rule_forms[p].items()]}
                for p in RULE_PREFIXES]

    def field_matrix(self):
        """One row per template field with its four checkboxes (visible / editable / required /
        unlocked here), for the permission table of the editor."""
        parts = {"visible": _("Visible"), "editable": _("Editable"), "required": _("Required"), "unlock": _("Unlock")}
        chosen = {part: {str(v) for v in (self[part].value() or [])} for part in parts}
        return [{"key": f["key"], "label": schema.field_label(f), "type": f.get("type", ""),
                 "cells": [(part, f["key"] in chosen[part], label) for part, label in parts.items()]}
                for f in self.template_fields]

    def matrix_errors(self):
        return [e for part in ("visible", "editable", "required", "unlock") for e in self.errors.get(part, [])]

    # --- validation ---

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if key and not KEY_RE.match(key):
            raise forms.ValidationError(IDENTIFIER_ERROR)
        return key  # empty: made from the name in clean()

    def _rule(self, prefix):
        """The slot's rule as plain data, or None (no kind chosen, or its parameters are wrong:
        then its parameter form holds the errors and this form is invalid too)."""
        name = self.cleaned_data.get(f"{prefix}_rule")
        if not name:
            return None
        kind, params_form = RULES[name], self.rule_forms[prefix].get(name)
        if params_form is None:
            return {"rule": name}
        if not params_form.is_valid():
            self.add_error(f"{prefix}_rule", _PARAMS_INVALID)
            return None
        return {"rule": name, **kind.params(params_form.cleaned_data)}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data["kind"]
        name = data["name_zh"].strip()
        if not data["key"]:
            original = (data.get("original_key") or "").strip()
            data["key"] = identifier_from_name(name, taken=self.taken_keys - {original}, fallback="node")
        node = {"key": data["key"], "kind": kind,
                "name": {"zh-hans": name, "en": data["name_en"].strip()} if data["name_en"].strip() else name}
        if kind in HUMAN_KINDS:
            handler = self._rule("handler")
            if handler is None and not self.has_error("handler_rule"):
                self.add_error("handler_rule", _("Say who handles this node."))
            backup = self._rule("backup")
            if kind == "countersign":
                extra = [self._rule(p) for p in ("extra1", "extra2", "extra3")]
                node["handlers"] = [r for r in [handler, *extra] if r]
                node["mode"] = data.get("mode") or "all"
                if node["mode"] == "any":
                    node["n"] = data.get("n") or 1
            elif handler:
                node["handler"] = handler
            if backup:
                node["backup"] = backup
            if data.get("time_limit"):
                node["time_limit"] = data["time_limit"]
            node["fields"] = {part: list(data.get(part) or []) for part in ("visible", "editable", "required")}
            if data.get("unlock"):
                node["unlock"] = list(data["unlock"])
            not_editable = set(node["fields"]["required"]) - set(node["fields"]["editable"]) - set(data["unlock"])
            if not_editable:
                self.add_error("required", _("Required fields must be editable here: %(keys)s.") % {
                    "keys": ", ".join(sorted(not_editable))})
            actions = list(data.get("actions") or [])
            if actions:
                if kind == "approval" and "approve" not in actions:
                    self.add_error("actions", _("An approval needs the “approve” action."))
                node["actions"] = [a for a in ACTIONS if a in actions]
            if data.get("waiting"):
                node["status"] = "waiting"
            if data.get("parts_reserve") or data.get("parts_consume"):
                node["parts"] = {"reserve": bool(data.get("parts_reserve")), "consume": bool(data.get("parts_consume"))}
        elif kind == "auto":
            if not data.get("auto_action"):
                self.add_error("auto_action", _("Choose the action this node runs."))
            node["action"] = data.get("auto_action") or ""
            params = self._params(data.get("params") or "")
            if params is not None:
                node["params"] = params
                if node["action"] == "webhook":
                    self._webhook_check(params)
        self.node = node
        return data

    def _params(self, text):
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            self.add_error("params", _("Write the parameters as a JSON object, e.g. {\"values\": {…}}."))
            return None
        if not isinstance(value, dict):
            self.add_error("params", _("Write the parameters as a JSON object, e.g. {\"values\": {…}}."))
            return None
        return value

    def _webhook_check(self, params):
        from .actions import webhook_params_error

        if error := webhook_params_error(params):
            self.add_error("params", error)

    def default_actions(self):
        return {kind: [str(ACTION_LABELS[a]) for a in actions] for kind, actions in DEFAULT_ACTIONS.items()}


def _condition_value(text, op):
    """The typed value of a condition row: a list for in/not_in, a number when it is one."""
    if op in ("empty", "not_empty"):
        return None
    if op in ("in", "not_in"):
        return [_scalar(v.strip()) for v in re.split(r"[,，、]", text) if v.strip()]
    return _scalar(text.strip())


def _scalar(text):
    if _INT_RE.match(text):
        return int(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return text if not number.is_finite() else str(number)


def condition_row(condition):
    """(field, op, value text) when a condition is one comparison (as this form builds), else None."""
    if not condition:
        return None
    if isinstance(condition, dict) and len(condition) == 1 and isinstance(
            condition.get("all", condition.get("any")), list):
        items = condition.get("all", condition.get("any"))
        if len(items) != 1:
            return None
        condition = items[0]
    if not isinstance(condition, dict) or "field" not in condition:
        return None
    value = condition.get("value")
    text = "、".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
    return condition.get("field"), condition.get("op"), text


class TransitionForm(BootstrapFormMixin, forms.Form):
    """A transition of the draft: from, to, on approve/reject, default, and a condition built
    from a field, an operator and a value. `clean()` leaves the plain data in `self.transition`."""

    index = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    original_from = forms.CharField(required=False, widget=forms.HiddenInput)
    original_to = forms.CharField(required=False, widget=forms.HiddenInput)
    source = forms.ChoiceField(label=_("From"))
    target = forms.ChoiceField(label=_("To"))
    on = forms.ChoiceField(label=_("After an approval"), required=False,
                           choices=[("", "—"), ("approve", _("on approve")), ("reject", _("on reject"))])
    is_default = forms.BooleanField(label=_("Default way (when no condition holds)"), required=False)
    cond_field = forms.ChoiceField(label=_("If"), required=False)
    cond_op = forms.ChoiceField(label=_("Operator"), required=False, choices=list(OP_LABELS.items()))
    cond_value = forms.CharField(label=_("Value"), required=False, max_length=MAX_VALUE,
                                 help_text=_("For “is one of”, separate values with commas."))
    keep_condition = forms.BooleanField(label=_("Keep the imported condition"), required=False)

    def __init__(self, data=None, *, nodes, fields, initial=None, kept_condition=None, **kwargs):
        super().__init__(data, initial=initial, **kwargs)
        node_choices = [(n["key"], f"{n['label']} ({n['key']})") for n in nodes]
        self.nodes = {n["key"]: n for n in nodes}
        self.fields["source"].choices = node_choices
        self.fields["target"].choices = node_choices
        field_choices = [(k, str(CONDITION_FIELD_LABELS.get(k, k))) for k in CONDITION_FIELDS]
        field_choices += [(f"data.{f['key']}", f"{schema.field_label(f)} (data.{f['key']})") for f in fields]
        self.fields["cond_field"].choices = [("", _("— always —")), *field_choices]
        self.kept_condition = kept_condition
        if kept_condition is None:
            del self.fields["keep_condition"]
        self.transition = None

    def editing(self):
        """True when the form edits an existing transition (it carries its index)."""
        return self["index"].value() not in (None, "")

    @classmethod
    def initial_for(cls, transition, index):
        initial = {"index": index, "original_from": transition.get("from"), "original_to": transition.get("to"),
                   "source": transition.get("from"), "target": transition.get("to"), "on": transition.get("on", ""),
                   "is_default": bool(transition.get("default"))}
        row = condition_row(transition.get("condition"))
        if row:
            initial.update(cond_field=row[0], cond_op=row[1], cond_value=row[2])
        elif transition.get("condition"):
            initial["keep_condition"] = True
        return initial

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        source, target = data["source"], data["target"]
        if source == target:
            self.add_error("target", _("A transition goes to another node."))
        kind = self.nodes[source]["kind"]
        if kind == "end":
            self.add_error("source", _("Nothing leaves an end node."))
        if self.nodes[target]["kind"] == "start":
            self.add_error("target", _("Nothing leads into the start node."))
        transition = {"from": source, "to": target}
        on = data.get("on")
        if on:
            transition["on"] = on
            if kind not in SIGNOFF_KINDS:
                self.add_error("on", _("“On approve / on reject” only applies after an approval or countersign node."))
        if data.get("is_default"):
            transition["default"] = True
        if self.kept_condition is not None and data.get("keep_condition"):
            transition["condition"] = self.kept_condition
        elif data.get("cond_field"):
            op = data.get("cond_op") or "="
            value = _condition_value(data.get("cond_value") or "", op)
            if op not in ("empty", "not_empty") and value in ("", []):
                self.add_error("cond_value", _("Enter the value to compare with."))
            comparison = {"field": data["cond_field"], "op": op}
            if value is not None:
                comparison["value"] = value
            transition["condition"] = {"all": [comparison]}
        if transition.get("default") and transition.get("condition"):
            self.add_error("is_default", _("The default way has no condition."))
        self.transition = transition
        return data


class ImportForm(ConfigImportForm):
    """A workflow exported as JSON or YAML."""

    file = forms.FileField(label=_("JSON or YAML file"), help_text=_("A file exported from a workflow (.json, .yaml)."))
    alias_error = _("YAML aliases (*name) are not allowed in a workflow file.")

    def payload_check(self, payload):
        if not isinstance(payload, dict) or not isinstance(payload.get("graph"), dict):
            raise forms.ValidationError(_("The file does not describe a workflow (it needs a “graph”)."))


class WorkflowCreateForm(forms.Form):
    """The list page's "create": a template of this tenant without a workflow, blank or from its preset."""

    template = forms.ModelChoiceField(queryset=TicketTemplate.objects.none())
    source = forms.ChoiceField(choices=[("blank", "blank"), ("preset", "preset")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = TicketTemplate.objects.filter(workflow__isnull=True)
        self.fields["template"].error_messages["invalid_choice"] = _(
            "Choose a ticket template of this company that has no workflow yet.")


class TaskActForm(forms.Form):
    """The inputs beside a task's action buttons (the node's fields are a separate form).
    Names start with _ so they never meet a template field's key (keys start with a letter)."""

    _action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS],
                                error_messages={"required": _("Choose an action."),
                                                "invalid_choice": _("Unknown action “%(value)s”.")})
    _comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    _target = forms.CharField(required=False, max_length=40)
    _transfer_to = forms.IntegerField(required=False, min_value=1,
                                      error_messages={"invalid": _("Select a member of staff of this company.")})
    _co_handler = forms.IntegerField(required=False, min_value=1,
                                     error_messages={"invalid": _("Select a member of staff of this company.")})

    _parts = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"max_length": _("At most 4000 characters of child ticket titles.")})

    def clean(self):
        data = super().clean()
        action = data.get("_action")
        titles = [line.strip() for line in (data.get("_parts") or "").splitlines() if line.strip()]
        data["parts"] = [{"title": title[:200]} for title in titles]
        if action == "split" and not titles and not self.has_error("_parts"):
            self.add_error("_parts", _("Write one child ticket title per line."))
        if action == "transfer" and not data.get("_transfer_to") and not self.has_error("_transfer_to"):
            self.add_error("_transfer_to", _("Choose whom to transfer the task to."))
        if action == "cohandle" and not data.get("_co_handler") and not self.has_error("_co_handler"):
            self.add_error("_co_handler", _("Choose the co-handler."))
        return data
