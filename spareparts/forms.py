"""Forms of the parts library: receive, adjust, transfer, scan. Querysets are those of the tenant
in scope, so another tenant's warehouse or part is never a valid choice."""

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin

from .models import Part, Warehouse
from .services import MAX_QUANTITY


class _StockForm(BootstrapFormMixin, forms.Form):
    warehouse = forms.ModelChoiceField(label=_("Warehouse"), queryset=Warehouse.objects.none())
    part = forms.ModelChoiceField(label=_("Part"), queryset=Part.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].queryset = Warehouse.objects.filter(is_active=True).order_by("code")
        self.fields["part"].queryset = Part.objects.filter(is_active=True).order_by("sku")


class ReceiveForm(_StockForm):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY)
    reason = forms.CharField(label=_("Note"), max_length=200, required=False,
                             help_text=_("E.g. the supplier's delivery note number."))


class AdjustForm(_StockForm):
    delta = forms.IntegerField(label=_("Change (+/−)"), min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY,
                               help_text=_("Negative to take away (damaged, lost), positive for units found."))
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def clean_delta(self):
        if self.cleaned_data["delta"] == 0:
            raise forms.ValidationError(_("The quantity must be at least 1."))
        return self.cleaned_data["delta"]


class TransferForm(BootstrapFormMixin, forms.Form):
    part = forms.ModelChoiceField(label=_("Part"), queryset=Part.objects.none())
    source = forms.ModelChoiceField(label=_("From"), queryset=Warehouse.objects.none())
    destination = forms.ModelChoiceField(label=_("To"), queryset=Warehouse.objects.none())
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        warehouses = Warehouse.objects.filter(is_active=True).order_by("code")
        self.fields["source"].queryset = warehouses
        self.fields["destination"].queryset = warehouses
        self.fields["part"].queryset = Part.objects.filter(is_active=True).order_by("sku")

    def clean(self):
        data = super().clean()
        if data.get("source") and data.get("source") == data.get("destination"):
            self.add_error("destination", _("Choose another warehouse than the source."))
        return data


class ScanForm(BootstrapFormMixin, forms.Form):
    code = forms.CharField(label=_("Barcode or SKU"), max_length=64,
                           widget=forms.TextInput(attrs={"autocomplete": "off",
                                                         "inputmode": "text", "enterkeyhint": "done"}))
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY, initial=1)


class ImportForm(BootstrapFormMixin, forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=[("catalogue", _("Parts catalogue")),
                                                       ("counts", _("Stock counts"))])
    file = forms.FileField(label=_("File (.csv or .xlsx)"),
                           help_text=_("Catalogue columns: sku, name, barcode, compatible_models, unit, cost_fen, "
                                       "price_fen, reorder_point, reorder_qty, supplier. Counts: warehouse, sku, "
                                       "counted."))
