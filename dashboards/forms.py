"""The filter form the board, the dashboard and the exports share, and the board's transfer form.
Choices are the tenant's own rows, so another tenant's id or an unknown value is a field error."""

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin
from scrm.models import Region, Store
from scrm.selectors import visible_regions, visible_stores
from tickets.models import Priority, TicketTemplate

from .models import QualityRuleKind
from .selectors import TicketFilters, handler_choices

PERIODS = ((7, _("Last 7 days")), (30, _("Last 30 days")), (90, _("Last 90 days")))
GROUPS = (("status", _("By status")), ("node", _("By workflow node")), ("handler", _("By handler")))


class FilterForm(BootstrapFormMixin, forms.Form):
    region = forms.ModelChoiceField(queryset=None, required=False, label=_("Region"), empty_label=_("All regions"))
    store = forms.ModelChoiceField(queryset=None, required=False, label=_("Store"), empty_label=_("All stores"))
    template = forms.ModelChoiceField(queryset=None, required=False, label=_("Template"),
                                      empty_label=_("All templates"))
    priority = forms.ChoiceField(choices=[("", _("All priorities")), *Priority.choices], required=False,
                                 label=_("Priority"))
    handler = forms.TypedChoiceField(coerce=int, required=False, label=_("Handler"), empty_value=None)
    days = forms.TypedChoiceField(coerce=int, choices=PERIODS, required=False, empty_value=30, initial=30,
                                  label=_("Period"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = Region.objects.order_by("name")
        self.fields["store"].queryset = Store.objects.order_by("code")
        self.fields["template"].queryset = TicketTemplate.objects.order_by("name")
        self.fields["handler"].choices = [("", _("All handlers"))] + [
            (u.pk, u.first_name or u.username) for u in handler_choices()]

    def filters(self) -> TicketFilters:
        """The valid filters (call after is_valid(); an invalid form filters nothing)."""
        data = self.cleaned_data if self.is_valid() else {}
        return TicketFilters(
            region_id=getattr(data.get("region"), "pk", None), store_id=getattr(data.get("store"), "pk", None),
            template_id=getattr(data.get("template"), "pk", None), priority=data.get("priority") or "",
            handler_id=data.get("handler"), days=data.get("days") or 30)


class DashboardFilterForm(FilterForm):
    """The dashboard's filters: period, region, store, template and handler — the keys of the
    daily roll-ups it reads (priority is not one: the board and the lists filter by it). Given
    the user, regions and stores are the ones they may see."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["priority"]
        self.fields["days"].error_messages["invalid_choice"] = _(
            "Choose a period of 7, 30 or 90 days (the dashboard reads at most 90 days).")
        if user is not None:
            # A regional manager picks among their own regions and stores: another one is a
            # field error rather than an empty dashboard.
            self.fields["region"].queryset = visible_regions(user=user).order_by("name")
            self.fields["store"].queryset = visible_stores(user=user).order_by("code")


class TransferForm(forms.Form):
    """A card dropped on a handler's column: which ticket, to whom (checked by the lifecycle)."""

    ticket = forms.IntegerField(min_value=1)
    handler = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.people = {u.pk: u for u in handler_choices()}
        self.fields["handler"].choices = [(pk, pk) for pk in self.people]
        self.fields["handler"].error_messages["invalid_choice"] = _(
            "Select a member of staff of this tenant who works on tickets.")


class QualityRuleForm(BootstrapFormMixin, forms.Form):
    """A 质检 rule: its name, kind and phrases (comma or newline separated); the service checks."""

    name = forms.CharField(label=_("Name"), max_length=60)
    kind = forms.ChoiceField(label=_("Rule kind"), choices=QualityRuleKind.choices)
    phrases = forms.CharField(label=_("Phrases"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text=_("Separate phrases with commas, e.g. 不知道, 没办法, 你自己看."))
