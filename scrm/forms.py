"""Staff forms for customers, opportunities and stores. Choice querysets come from the
visibility selectors, so another tenant's (or region's) id is simply not a valid choice."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_scopes.forms import SafeModelChoiceField, SafeModelMultipleChoiceField

from .models import Customer, Membership, Opportunity, Store, Tag
from .phone import phone_normalize
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
            "name", "phone", "email", "tier", "region", "store", "owner", "tags", "address",
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
        widgets = {"signed_date": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = visible_customers(user=user).order_by("name")
        self.fields["owner"].queryset = staff_users()


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocapitalize="none", autocomplete="username")
