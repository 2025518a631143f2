"""Staff forms for customers, opportunities and stores, and what the apps' forms share (Bootstrap
widgets, staff choices, the import of a configuration file). Choice querysets come from the
visibility selectors, so another tenant's (or region's) id is simply not a valid choice."""

import hashlib
import json

import yaml
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_scopes.forms import SafeModelChoiceField, SafeModelMultipleChoiceField

from .models import Customer, Membership, Opportunity, Role, Skill, Store, Tag, Team
from .phone import phone_normalize
from .ratelimit import client_ip, failures_add, failures_clear, failures_get, window_left
from .selectors import visible_customers, visible_regions, visible_stores


def staff_users():
    """Users with a seat in the tenant in scope (Membership is scoped, so this is too)."""
    return get_user_model().objects.filter(memberships__in=Membership.objects.filter(is_active=True)).order_by(
        "first_name", "username"
    )


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.first_name or obj.username


def scoped_formfield(db_field, **kwargs):
    """ModelForm field factory: relation fields start with an empty queryset (building the form
    class runs outside any scope); each form's __init__ sets the scoped queryset it offers."""
    if isinstance(db_field, models.ManyToManyField):
        kwargs.setdefault("form_class", SafeModelMultipleChoiceField)
    elif isinstance(db_field, models.ForeignKey):
        kwargs.setdefault("form_class", SafeModelChoiceField)
    return db_field.formfield(**kwargs)


class BootstrapFormMixin:
    """Gives widgets Bootstrap's classes so templates can render fields plainly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, (forms.CheckboxSelectMultiple, forms.RadioSelect)):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = (widget.attrs.get("class", "") + " " + css).strip()


def _json_parse(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(
            _("The file is not valid JSON: %(error)s") % {"error": f"{exc.msg} (line {exc.lineno})"}
            if isinstance(exc, json.JSONDecodeError) else _("The file is not valid JSON.")
        ) from exc
    except RecursionError as exc:
        raise forms.ValidationError(_("The file is nested too deeply.")) from exc


def _yaml_parse(text, alias_error):
    try:
        # Aliases (&a / *a) can blow a small file up into a huge document: configuration needs none.
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise forms.ValidationError(alias_error)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _(" (line %(line)d)") % {"line": mark.line + 1} if mark is not None else ""
        raise forms.ValidationError(
            _("The file is not valid YAML%(where)s: %(error)s") % {"where": where, "error": getattr(exc, "problem", "")
                                                                   or exc}
        ) from exc
    except RecursionError as exc:
        raise forms.ValidationError(_("The file is nested too deeply.")) from exc


class ConfigImportForm(BootstrapFormMixin, forms.Form):
    """Configuration exported as JSON or YAML (a ticket template, a workflow), at most 512 KB.
    clean_file parses it into `payload` (a plain dict) and lets `payload_check` refuse what is
    not the subclass's kind of file; the import service checks the rest. Subclasses declare
    `file` with their help text and set `alias_error`."""

    file = forms.FileField(label=_("JSON or YAML file"))
    publish = forms.BooleanField(label=_("Publish right away"), required=False)

    MAX_BYTES = 512 * 1024
    alias_error = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs["accept"] = ".json,.yaml,.yml,application/json,application/yaml"
        self.payload = None

    def payload_check(self, payload):
        """Raise a ValidationError when the parsed file is not what this form imports."""
        raise NotImplementedError

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 512 KB."))
        name = (upload.name or "").lower()
        kind = "json" if name.endswith(".json") else "yaml" if name.endswith((".yaml", ".yml")) else None
        if kind is None:
            raise forms.ValidationError(_("Upload a .json, .yaml or .yml file."))
        try:
            text = upload.read(self.MAX_BYTES + 1).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from exc
        payload = _json_parse(text) if kind == "json" else _yaml_parse(text, self.alias_error)
        self.payload_check(payload)
        self.payload = payload
        return upload


class PhoneFormMixin:
    def clean_phone(self):
        raw = self.cleaned_data.get("phone", "")
        return phone_normalize(raw) if raw else ""


class CustomerForm(BootstrapFormMixin, PhoneFormMixin, forms.ModelForm):
    owner = StaffChoiceField(queryset=None, required=False, label=_("owner"))

    class Meta:
        model = Customer
        formfield_callback = scoped_formfield
        fields = [
            "name", "phone", "email", "tier", "source", "region", "store", "owner", "tags", "address",
            "wecom_external_userid", "wechat_openid", "note",
        ]
        widgets = {
            "note": forms.Textarea(attrs={"rows": 3}),
            "tags": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user=user).order_by("code")
        self.fields["store"].queryset = visible_stores(user=user).order_by("code")
        self.fields["owner"].queryset = staff_users()
        self.fields["tags"].queryset = Tag.objects.order_by("name")
        self.fields["phone"].widget.attrs.update(inputmode="tel", placeholder="13812345678")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("phone") and not cleaned.get("wecom_external_userid") and not cleaned.get("wechat_openid"):
            self.add_error("phone", _("Give a phone number, a WeCom external user id or a WeChat openid."))
        return cleaned


class StoreForm(BootstrapFormMixin, PhoneFormMixin, forms.ModelForm):
    class Meta:
        model = Store
        formfield_callback = scoped_formfield
        fields = ["region", "name", "code", "city", "address", "phone", "latitude", "longitude", "is_active"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user=user).order_by("code")


class OpportunityForm(BootstrapFormMixin, forms.ModelForm):
    owner = StaffChoiceField(queryset=None, required=False, label=_("owner"))

    class Meta:
        model = Opportunity
        formfield_callback = scoped_formfield
        fields = ["customer", "title", "amount", "stage", "owner", "signed_date"]
        # A date input takes ISO dates whatever the language; the localized format would show blank.
        widgets = {"signed_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = visible_customers(user=user).order_by("name")
        self.fields["owner"].queryset = staff_users()


class StaffForm(BootstrapFormMixin, PhoneFormMixin, forms.Form):
    """A person on the staff page: who they are, their role, where they work and what they can do.
    `username` and `password` only when adding someone; a blank password means they set their
    own through a link."""

    display_name = forms.CharField(label=_("full name"), max_length=40)
    username = forms.RegexField(
        label=_("sign-in name"), max_length=40, regex=r"^[A-Za-z0-9_.@+-]{3,40}$",
        help_text=_("3–40 letters, digits or . @ + - _; a phone number works well."),
        error_messages={"invalid": _("Use 3–40 letters, digits or . @ + - _ (no spaces or Chinese characters).")},
    )
    password = forms.CharField(
        label=_("initial password"), required=False, max_length=128, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Leave blank to give them a link where they set their own."),
    )
    phone = forms.CharField(label=_("phone"), max_length=24, required=False)
    email = forms.EmailField(label=_("email"), required=False)
    role = forms.ChoiceField(label=_("role"), choices=Role.choices, initial=Role.ENGINEER)
    home_store = SafeModelChoiceField(queryset=Store.objects.none(), label=_("home store"), required=False)
    skills = SafeModelMultipleChoiceField(queryset=Skill.objects.none(), label=_("skills"), required=False,
                                          widget=forms.CheckboxSelectMultiple)
    teams = SafeModelMultipleChoiceField(queryset=Team.objects.none(), label=_("teams"), required=False,
                                         widget=forms.CheckboxSelectMultiple)
    wecom_userid = forms.CharField(label=_("WeCom user id"), max_length=64, required=False)
    max_open_tickets = forms.IntegerField(label=_("max open tickets"), min_value=1, max_value=500, initial=20)
    on_duty = forms.BooleanField(label=_("on duty"), required=False, initial=True)

    def __init__(self, *args, creating=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["home_store"].queryset = Store.objects.filter(is_active=True).select_related("region").order_by(
            "region__code", "code")
        self.fields["skills"].queryset = Skill.objects.order_by("name")
        self.fields["teams"].queryset = Team.objects.order_by("name")
        if not creating:
            del self.fields["username"], self.fields["password"]


class StaffPasswordForm(BootstrapFormMixin, forms.Form):
    password = forms.CharField(
        label=_("new password"), max_length=128, strip=False, required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Leave blank to get a one-time link where they set their own."),
    )


class LoginThrottleMixin:
    """Failed sign-ins are counted per account and per client address (scrm.ratelimit, fixed
    windows of LOGIN_FAILURE_WINDOW seconds); past LOGIN_FAILURES_PER_ACCOUNT or
    LOGIN_FAILURES_PER_ADDRESS even the right password is refused until the window ends, so
    guessing costs the attacker time and the locked-out user sees why. A success clears the
    account's count."""

    def clean(self):
        window = settings.LOGIN_FAILURE_WINDOW
        username = (self.cleaned_data.get("username") or "").strip().lower()
        account = hashlib.sha256(username.encode()).hexdigest()[:32] if username else ""
        address = client_ip(self.request) if self.request is not None else ""
        checks = [("login-account", account, settings.LOGIN_FAILURES_PER_ACCOUNT),
                  ("login-address", address, settings.LOGIN_FAILURES_PER_ADDRESS)]
        if any(ident and failures_get(scope=scope, ident=ident, window=window) >= limit
               for scope, ident, limit in checks):
            minutes = -(-window_left(window) // 60)
            raise ValidationError(
                ngettext("Too many failed sign-ins for this account or from your network. Try again in %(n)d minute.",
                         "Too many failed sign-ins for this account or from your network. "
                         "Try again in %(n)d minutes.", minutes) % {"n": minutes},
                code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            for scope, ident, _limit in checks:
                if ident:
                    failures_add(scope=scope, ident=ident, window=window)
            raise
        if account:
            failures_clear(scope="login-account", ident=account, window=window)
        return cleaned


class LoginForm(LoginThrottleMixin, AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocapitalize="none", autocomplete="username")
