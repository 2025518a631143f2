"""Forms of the ticket pages. The custom fields' form comes from tickets.fields.form_class_for;
these are the fixed parts around it (contact, comment, assignment, split, merge, settings)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin, StaffChoiceField, scoped_formfield, staff_users
from scrm.phone import phone_normalize

from .models import ClassificationRule, Priority, TicketTemplate
from .selectors import category_list, template_list

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
    """The fixed part of the staff 'new ticket' form (phone calls, walk-ins)."""

    title = forms.CharField(label=_("Title"), max_length=200, required=False,
                            help_text=_("Leave empty to name it after the template and customer."))
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  max_length=10000)
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)
    source = forms.ChoiceField(label=_("Channel"), choices=[("phone", _("Phone")), ("staff", _("Walk-in / staff"))])
    customer_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    customer_name = forms.CharField(label=_("Customer name"), max_length=60, required=False)
    customer_phone = forms.CharField(label=_("Customer phone"), max_length=24, required=False)

    def clean_customer_phone(self):
        raw = self.cleaned_data.get("customer_phone")
        return phone_normalize(raw) if raw else ""

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("customer_id") and not cleaned.get("customer_phone"):
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


class TemplateSettingsForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = TicketTemplate
        fields = ["name", "slug", "category", "description", "default_priority", "number_prefix", "is_public",
                  "is_active"]
        formfield_callback = scoped_formfield
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = category_list()


class TemplateImportForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=_("JSON or YAML file"))
    publish = forms.BooleanField(label=_("Publish right away"), required=False)

    MAX_BYTES = 512 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 512 KB."))
        return upload


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
