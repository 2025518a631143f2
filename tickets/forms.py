"""Forms of the ticket pages. The custom fields' form comes from tickets.fields.form_class_for;
these are the fixed parts around it (contact, comment, assignment, split, merge, settings). The
builder's field editor is tickets.forms_builder."""

import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin, ConfigImportForm, StaffChoiceField, scoped_formfield, staff_users
from scrm.phone import phone_normalize
from scrm.selectors import customer_get, opportunity_get

from .identifiers import identifier_from_name
from .models import ClassificationRule, Priority, TicketTemplate
from .selectors import category_list, template_list
from .services.bulk import BULK_MAX
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


class IdListField(forms.Field):
    """Several integer ids from checkboxes of the same name."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": _("Enter whole numbers."), "required": _("Tick the tickets first.")}

    def to_python(self, value):
        values = value if isinstance(value, (list, tuple)) else ([value] if value else [])
        try:
            return [int(v) for v in values if str(v).strip()]
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class BulkForm(forms.Form):
    """The list's bulk bar: which tickets (at most BULK_MAX) and what to do with them."""

    ids = IdListField()
    action = forms.ChoiceField(choices=[("assign", _("Dispatch")), ("close", _("Close"))])
    assignee = StaffChoiceField(queryset=None, required=False, label=_("Assignee"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = staff_users()

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if len(ids) > BULK_MAX:
            raise forms.ValidationError(_("At most %(n)d tickets at once.") % {"n": BULK_MAX})
        return ids


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
                  "is_public", "is_active", "site_photos_public"]
        formfield_callback = scoped_formfield
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "slug": _("The public form's address ends with it. Made from the name when left empty (e.g. 餐饮投诉 → "
                      "canyintousu); letters, digits, - and _."),
            "is_public": _("Once published, customers can submit it on the public web form (its address ends with "
                           "the slug)."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["category"].queryset = category_list()
        self.fields["category"].required = False
        self.fields["new_category"].widget.attrs["list"] = "category-names"
        self.fields["number_prefix"].widget.attrs.update(style="text-transform: uppercase", autocapitalize="characters")

    def clean_slug(self):
        # Left empty: made from the name in clean() (pinyin), unique among this company's templates.
        return (self.cleaned_data.get("slug") or "").strip()

    def clean_number_prefix(self):
        prefix = (self.cleaned_data.get("number_prefix") or "").strip().upper()
        if not PREFIX_RE.match(prefix):
            raise forms.ValidationError(_("Use 1 to 8 letters A–Z, e.g. WX."))
        return prefix

    def clean(self):
        cleaned = super().clean()
        if "slug" in cleaned and not cleaned["slug"] and (cleaned.get("name") or "").strip():
            taken = TicketTemplate.objects.exclude(pk=self.instance.pk).values_list("slug", flat=True)
            cleaned["slug"] = identifier_from_name(cleaned["name"], taken=set(taken), fallback="form",
                                                   separator="-", max_length=50)
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


class RatingForm(BootstrapFormMixin, forms.Form):
    """The customer's 满意度评价 on the tracking page: 1–5 stars and an optional comment."""

    score = forms.TypedChoiceField(label=_("How satisfied are you with our service?"), coerce=int,
                                   choices=[(n, n) for n in range(5, 0, -1)], widget=forms.RadioSelect,
                                   error_messages={"invalid_choice": _("Choose a score from 1 to 5."),
                                                   "required": _("Choose a score from 1 to 5.")})
    comment = forms.CharField(label=_("Comment (optional)"), required=False, max_length=1000,
                              widget=forms.Textarea(attrs={"rows": 3}))
