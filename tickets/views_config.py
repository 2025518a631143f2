"""Configuration pages for managers: ticket templates (list, presets, the builder with its live
preview, publish, JSON/YAML export and import), keyword classification rules with a tester, and
API keys. Thin: tickets.selectors reads, tickets.services.config writes, tickets.forms and
tickets.forms_builder validate."""

import json

import yaml
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from scrm.views import ObjectView, StaffView

from . import fields as schema
from . import selectors
from .classification import rule_match
from .forms import (
    DEFAULT_CATEGORY_NAMES,
    ApiKeyForm,
    ContactForm,
    RuleForm,
    RuleTestForm,
    TemplateImportForm,
    TemplateSettingsForm,
)
from .forms_builder import FieldForm
from .models import ClassificationRule
from .presets import preset_list
from .services import config as services

TEMPLATE_PERMISSION = "tickets.change_tickettemplate"
RULE_PERMISSION = "tickets.change_classificationrule"
API_KEY_PERMISSION = "tickets.add_apikey"
EXPORT_FORMATS = {
    "json": ("application/json; charset=utf-8", "json"),
    "yaml": ("application/yaml; charset=utf-8", "yaml"),
}


def is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def errors_to_form(form, exc, aliases=None):
    """Put a service's ValidationError on a form: errors about a field the form has (directly or
    through `aliases`) go next to it, the rest on top of the form."""
    aliases = aliases or {}
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            name = aliases.get(key, key)
            if name in form.fields:
                form.add_error(name, errors)
            elif key == NON_FIELD_ERRORS:
                form.add_error(None, errors)
            else:  # about a setting the form has no input for (an imported file's slug …): say which
                form.add_error(None, [f"{key}: {message}" for message in ValidationError(errors).messages])
    else:
        form.add_error(None, exc.messages)


class ConfigFormView(StaffView):
    """GET shows a form page, POST validates it and calls `save`; service errors come back as
    form errors (400) and nothing is written."""

    template_name = "scrm/form.html"
    error_aliases = {}

    def get_form(self, data=None):
        raise NotImplementedError

    def get(self, request, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, **kwargs):
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                obj = self.save(form)
            except ValidationError as exc:
                errors_to_form(form, exc, self.error_aliases)
            else:
                messages.success(request, self.success_message(obj))
                return redirect(self.success_url(obj))
        return self.render_form(form, status=400)

    def render_form(self, form, status=200):
        context = {"form": form, "title": self.get_title(), "cancel_url": self.cancel_url(), **self.extra_context()}
        return render(self.request, self.template_name, context, status=status)

    def extra_context(self):
        return {}

    def success_message(self, obj):
        return _("Saved.")


# --- templates: list, new, presets, import --------------------------------------------------

def public_form_url(request, template):
    """The public form's address, when customers can use it (public, active and published)."""
    if not (template.is_public and template.is_active and template.current_version_id):
        return None
    return reverse("ticket-public-form", kwargs={"tenant_slug": request.tenant.slug, "template_slug": template.slug})


def _draft_changed(template):
    version = template.current_version
    return version is None or version.fields != template.draft_fields


class TemplateListView(StaffView):
    """`/config/templates/`: every template with its category, published version and public
    link; new blank, new from an industry preset, or import a file."""

    permission = TEMPLATE_PERMISSION

    def get(self, request):
        return self.render_page()

    def render_page(self, import_form=None, status=200):
        rows = [
            {"template": t, "public_url": public_form_url(self.request, t), "draft_changed": _draft_changed(t),
             "field_count": len(t.draft_fields or ())}
            for t in selectors.template_list()
        ]
        presets = [
            {"slug": p["slug"], "name": p["name"], "category": p["category"]["name"],
             "description": p.get("description", ""), "field_count": len(p["fields"])}
            for p in preset_list()
        ]
        context = {"rows": rows, "presets": presets, "import_form": import_form or TemplateImportForm()}
        return render(self.request, "tickets/config/template_list.html", context, status=status)


class TemplatePresetView(StaffView):
    """POST: a new template from an industry preset, opened in the builder (not yet published)."""

    permission = TEMPLATE_PERMISSION

    def post(self, request):
        try:
            template = services.template_preset_create(
                tenant=request.tenant, preset_slug=request.POST.get("preset", ""), actor=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("template-list")
        messages.success(request, _("Template “%(name)s” created from the preset. Check its fields, then publish it.")
                         % {"name": template.name})
        return redirect("template-builder", pk=template.pk)


class TemplateSettingsMixin:
    form_class = TemplateSettingsForm
    template_name = "tickets/config/template_form.html"

    def extra_context(self):
        names = list(DEFAULT_CATEGORY_NAMES)
        names += [c.name for c in selectors.category_list() if c.name not in names]
        return {"category_names": names}

    def values(self, form):
        data = form.cleaned_data
        category = data["category"]
        if category is None:
            try:
                category = services.category_ensure(tenant=self.request.tenant, name=data["new_category"])
            except ValidationError as exc:
                raise ValidationError({"new_category": exc.messages}) from exc
        return {
            "name": data["name"], "slug": data["slug"], "category": category, "description": data["description"],
            "default_priority": data["default_priority"], "number_prefix": data["number_prefix"],
            "is_public": data["is_public"], "is_active": data["is_active"],
        }

    def success_url(self, obj):
        return reverse("template-builder", args=[obj.pk])


class TemplateCreateView(TemplateSettingsMixin, ConfigFormView):
    """`/config/templates/new/`: a blank template (its settings), then on to the builder."""

    permission = TEMPLATE_PERMISSION

    def get_form(self, data=None):
        return TemplateSettingsForm(data, initial={"is_active": True})

    def get_title(self):
        return _("New ticket template")

    def cancel_url(self):
        return reverse("template-list")

    def save(self, form):
        return services.template_create(tenant=self.request.tenant, **self.values(form))

    def success_message(self, obj):
        return _("Template created. Add its fields.")


class TemplateImportView(StaffView):
    """`/config/templates/import/`: a JSON or YAML export becomes a template (a new one, or a new
    draft of the template with the file's slug). Bad files change nothing."""

    permission = TEMPLATE_PERMISSION
    template_name = "tickets/config/template_import.html"

    def get(self, request):
        return render(request, self.template_name, {"form": TemplateImportForm()})

    def post(self, request):
        form = TemplateImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                template = self.do_import(form)
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                messages.success(request, _("Imported “%(name)s”.") % {"name": template.name})
                return redirect("template-builder", pk=template.pk)
        return self.render_invalid(form)

    def do_import(self, form):
        return services.template_import(tenant=self.request.tenant, payload=form.payload,
                                        publish=form.cleaned_data["publish"], actor=self.request.user)

    def render_invalid(self, form):
        return render(self.request, self.template_name, {"form": form}, status=400)


# --- the builder ----------------------------------------------------------------------------

class TemplateObjectView(StaffView, ObjectView):
    permission = TEMPLATE_PERMISSION

    def load(self, pk):
        return selectors.template_get(pk=pk)

    @property
    def template(self):
        return self.object


def field_rows(fields):
    return [
        {"key": f["key"], "label": schema.field_label(f), "type": f["type"],
         "type_label": schema.FIELD_TYPES[f["type"]].label if f["type"] in schema.FIELD_TYPES else f["type"],
         "required": f.get("required"), "public": f.get("public"), "staff": f.get("staff")}
        for f in fields
    ]


def preview_context(template):
    """The public and the staff form built from the draft, as a customer and an agent see them."""
    try:
        public_form = schema.form_class_for(template.draft_fields, audience="public")(auto_id="pv-public-%s")
        staff_form = schema.form_class_for(template.draft_fields, audience="staff")(auto_id="pv-staff-%s")
    except ValidationError as exc:
        return {"preview_error": exc.messages, "template": template}
    return {
        "template": template,
        "public_form": public_form,
        "staff_form": staff_form,
        # As the public form does: the fixed contact block only when no public phone field asks for it.
        "contact_form": None if any(f.get("public") == "edit" and f["type"] == "phone" for f in template.draft_fields)
        else ContactForm(auto_id="pv-contact-%s"),
        "hidden_public": [schema.field_label(f) for f in template.draft_fields if f.get("public") == "hidden"],
    }


class BuilderView(TemplateObjectView):
    """`/config/templates/<pk>/`: the draft's fields (drag to reorder, edit, delete), the field
    editor, the live preview, and publish / settings / export / import."""

    def get(self, request, pk):
        form = None
        key = request.GET.get("edit", "")
        if key:
            field = next((f for f in self.template.draft_fields if f["key"] == key), None)
            if field is not None:
                form = self.field_form(initial=FieldForm.initial_for(field))
        return self.render_page(field_form=form)

    def field_form(self, data=None, initial=None):
        return FieldForm(data, initial=initial, existing_keys=[f["key"] for f in self.template.draft_fields])

    def left_context(self, field_form=None, panel_error=None, panel_message=None):
        return {
            "template": self.template,
            "rows": field_rows(self.template.draft_fields),
            "field_form": field_form or self.field_form(),
            "panel_error": panel_error,
            "panel_message": panel_message,
            "draft_changed": _draft_changed(self.template),
        }

    def render_page(self, status=200, field_form=None, import_form=None, publish_error=None, panel_error=None):
        context = {
            **self.left_context(field_form=field_form, panel_error=panel_error),
            **preview_context(self.template),
            "public_url": public_form_url(self.request, self.template),
            "import_form": import_form or TemplateImportForm(),
            "publish_error": publish_error,
        }
        return render(self.request, "tickets/config/builder.html", context, status=status)

    def render_left(self, status=200, changed=False, **kwargs):
        """The left column alone (htmx); a change tells the preview to re-render itself."""
        context = {**self.left_context(**kwargs), "oob": True}  # the header's publish status too
        response = render(self.request, "tickets/config/_builder_left.html", context, status=status)
        if changed:
            response["HX-Trigger"] = "draft-changed"
        return response

    def done(self, message):
        """After a successful change: the refreshed left column (htmx) or the whole page."""
        if is_htmx(self.request):
            return self.render_left(changed=True, panel_message=message)
        messages.success(self.request, message)
        return redirect("template-builder", pk=self.template.pk)

    def failed(self, error, field_form=None):
        if is_htmx(self.request):
            return self.render_left(status=400, panel_error=error, field_form=field_form)
        return self.render_page(status=400, panel_error=error, field_form=field_form)


def field_name(field):
    """A field as a manager knows it: its label (中文 first), its key only when it has none."""
    return schema.field_label(field)


class FieldFormView(BuilderView):
    """GET: the field editor, empty or (?key=) filled with a field of the draft. POST: add the
    field, or replace the one named by original_key; the whole draft is validated first."""

    def get(self, request, pk):
        key = request.GET.get("key", "")
        form = self.field_form()
        if key:
            field = next((f for f in self.template.draft_fields if f["key"] == key), None)
            if field is None:
                raise Http404
            form = self.field_form(initial=FieldForm.initial_for(field))
        if is_htmx(request):
            return render(request, "tickets/config/_field_form.html", {"template": self.template, "field_form": form})
        return self.render_page(field_form=form)

    def post(self, request, pk):
        form = self.field_form(request.POST)
        if form.is_valid():
            try:
                services.template_field_save(template=self.template, field=form.field_dict(),
                                             original_key=form.cleaned_data["original_key"])
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                return self.done(_("Field “%(label)s” saved.") % {"label": field_name(form.field_dict())})
        return self.failed(None, field_form=form)


class FieldDeleteView(BuilderView):
    http_method_names = ["post"]

    def post(self, request, pk):
        key = request.POST.get("key", "")
        field = next((f for f in self.template.draft_fields if f.get("key") == key), {"key": key})
        try:
            services.template_field_delete(template=self.template, key=key)
        except ValidationError as exc:
            return self.failed(" ".join(exc.messages))
        return self.done(_("Field “%(label)s” deleted.") % {"label": field_name(field)})


class FieldsReorderView(BuilderView):
    """POST the keys in their new order (`keys`, as the drag and drop list sends them), or one
    `move` key with `direction` up/down (the buttons beside each field)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        keys = request.POST.getlist("keys")
        move = request.POST.get("move")
        if move:
            keys = [f["key"] for f in self.template.draft_fields]
            if move in keys:
                i = keys.index(move)
                j = i - 1 if request.POST.get("direction") == "up" else i + 1
                if 0 <= j < len(keys):
                    keys[i], keys[j] = keys[j], keys[i]
        try:
            services.template_fields_reorder(template=self.template, keys=keys)
        except ValidationError as exc:
            return self.failed(" ".join(exc.messages))
        return self.done(_("Order saved."))


class PreviewView(TemplateObjectView):
    def get(self, request, pk):
        return render(request, "tickets/config/_preview.html", preview_context(self.template))


class PublishView(BuilderView):
    def get(self, request, pk):
        return redirect("template-builder", pk=pk)

    def post(self, request, pk):
        try:
            version = services.template_publish(template=self.template, actor=request.user)
        except ValidationError as exc:
            return self.render_page(status=400, publish_error=" ".join(exc.messages))
        messages.success(request, _("v%(n)d published.") % {"n": version.number})
        return redirect("template-builder", pk=pk)


class ExportView(TemplateObjectView):
    """`?format=json` or `?format=yaml`: the template (its draft) as a file to download."""

    def get(self, request, pk):
        kind = request.GET.get("format", "json")
        if kind not in EXPORT_FORMATS:
            return HttpResponse(_("Unknown export format: use json or yaml."), status=400,
                                content_type="text/plain; charset=utf-8")
        payload = services.template_export(template=self.template)
        if kind == "json":
            body = json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
        else:
            body = yaml.safe_dump(payload, allow_unicode=True, sort_keys=False)
        content_type, extension = EXPORT_FORMATS[kind]
        response = HttpResponse(body.encode("utf-8"), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{self.template.slug}.{extension}"'
        return response


class ImportIntoView(BuilderView):
    """The builder's Import: the file's settings and fields replace this template's draft."""

    def get(self, request, pk):
        return redirect("template-builder", pk=pk)

    def post(self, request, pk):
        form = TemplateImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                template = services.template_import_into(template=self.template, payload=form.payload,
                                                         publish=form.cleaned_data["publish"], actor=request.user)
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                messages.success(request, _("Imported “%(name)s”.") % {"name": template.name})
                return redirect("template-builder", pk=pk)
        return self.render_page(status=400, import_form=form)


class TemplateSettingsView(TemplateSettingsMixin, ConfigFormView, ObjectView):
    """`/config/templates/<pk>/settings/`: name, slug, category, priority, number prefix, public."""

    permission = TEMPLATE_PERMISSION

    def load(self, pk):
        return selectors.template_get(pk=pk)

    def get_form(self, data=None):
        return TemplateSettingsForm(data, instance=self.object)

    def get_title(self):
        return _("Template settings")

    def cancel_url(self):
        return reverse("template-builder", args=[self.object.pk])

    def save(self, form):
        return services.template_update(template=self.object, **self.values(form))


# --- classification rules -------------------------------------------------------------------

def split_names(text):
    return [part.strip() for part in (text or "").replace("，", ",").replace("、", ",").split(",") if part.strip()]


class RuleListView(StaffView):
    permission = RULE_PERMISSION

    def get(self, request):
        return render(request, "tickets/config/rule_list.html", {"rules": selectors.classification_rule_list()})


class RuleCreateView(ConfigFormView):
    permission = RULE_PERMISSION
    error_aliases = {"keywords": "keywords_text", "add_tags": "tags_text", "tag_names": "tags_text"}
    rule = None

    def get_form(self, data=None):
        return RuleForm(data, instance=self.rule or ClassificationRule(tenant=self.request.tenant))

    def get_title(self):
        return _("New classification rule")

    def cancel_url(self):
        return reverse("rule-list")

    def success_url(self, obj):
        return reverse("rule-list")

    def save(self, form):
        data = form.cleaned_data
        return services.classification_rule_save(
            tenant=self.request.tenant, rule=self.rule, name=data["name"], keywords=data["keywords_text"],
            match=data["match"], set_template=data["set_template"], set_category=data["set_category"],
            set_priority=data["set_priority"], tag_names=split_names(data["tags_text"]), order=data["order"],
            is_active=data["is_active"],
        )


class RuleUpdateView(RuleCreateView, ObjectView):
    def load(self, pk):
        rule = selectors.classification_rule_get(pk=pk)
        self.rule = rule
        return rule

    def get_title(self):
        return _("Edit classification rule")


class RuleTestView(StaffView):
    """`/config/rules/test/`: paste a request's text and see which active rule fires, on which
    keywords, and what it would set."""

    permission = RULE_PERMISSION

    def get(self, request):
        return self.render_page(RuleTestForm())

    def post(self, request):
        form = RuleTestForm(request.POST)
        context = {}
        if form.is_valid():
            rules = selectors.classification_rules()
            text = form.cleaned_data["text"]
            verdict = rule_match(rules, text)
            context["tested"] = True
            if verdict is not None:
                context["verdict"] = verdict
                context["rule"] = selectors.classification_rule_get(pk=verdict.rule.id)
                context["also"] = [r for r in rules if r.id != verdict.rule.id and rule_match([r], text)]
        template = "tickets/config/_rule_test_result.html" if is_htmx(request) else None
        return self.render_page(form, status=200 if form.is_valid() else 400, partial=template, **context)

    def render_page(self, form, status=200, partial=None, **context):
        return render(self.request, partial or "tickets/config/rule_test.html", {"form": form, **context},
                      status=status)


# --- API keys -------------------------------------------------------------------------------

class ApiKeyListView(StaffView):
    """`/config/api-keys/`: the tenant's keys; POST creates one and shows its secret once."""

    permission = API_KEY_PERMISSION

    def get(self, request):
        return self.render_page(ApiKeyForm())

    def post(self, request):
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, secret = services.api_key_create(tenant=request.tenant, name=form.cleaned_data["name"],
                                                      actor=request.user)
            except ValidationError as exc:
                errors_to_form(form, exc)
            else:
                response = self.render_page(ApiKeyForm(), new_key=key, secret=secret)
                response["Cache-Control"] = "no-store"
                return response
        return self.render_page(form, status=400)

    def render_page(self, form, status=200, **context):
        return render(self.request, "tickets/config/apikey_list.html",
                      {"form": form, "keys": selectors.api_key_list(), **context}, status=status)


class ApiKeyRevokeView(StaffView, ObjectView):
    permission = API_KEY_PERMISSION

    def load(self, pk):
        return selectors.api_key_get(pk=pk)

    def get(self, request, pk):
        return redirect("apikey-list")

    def post(self, request, pk):
        services.api_key_revoke(key=self.object)
        messages.success(request, _("Key “%(name)s” revoked: requests with it are refused from now on.")
                         % {"name": self.object.name})
        return redirect("apikey-list")
