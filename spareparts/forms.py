"""Forms of the parts library: receive, adjust, transfer, scan, and the manager's edit forms for
parts, warehouses and bill-of-materials lines. Querysets are those of the tenant
in scope, so another tenant's warehouse or part is never a valid choice."""

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin, StaffChoiceField, scoped_formfield, staff_users
from scrm.models import Region, Store

from .models import Part, Warehouse, WarehouseKind
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


class PurchaseOrderForm(BootstrapFormMixin, forms.Form):
    """Purchasing placed the order of a draft request: the supplier (the part's preferred one to
    start with), the quantity ordered and the delivery date expected."""

    supplier = forms.CharField(label=_("Supplier"), max_length=100)
    quantity = forms.IntegerField(label=_("Quantity ordered"), min_value=1, max_value=MAX_QUANTITY)
    expected_on = forms.DateField(label=_("Expected delivery"), widget=forms.DateInput(attrs={"type": "date"}))


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


MAX_YUAN = Decimal("100000000")


class PartForm(BootstrapFormMixin, forms.ModelForm):
    """A catalogue entry, priced in yuan on the page (stored in fen)."""

    cost = forms.DecimalField(label=_("Cost (¥)"), min_value=Decimal("0"), max_value=MAX_YUAN, decimal_places=2,
                              max_digits=11, initial=Decimal("0"))
    price = forms.DecimalField(label=_("Price (¥)"), min_value=Decimal("0"), max_value=MAX_YUAN, decimal_places=2,
                               max_digits=11, initial=Decimal("0"),
                               help_text=_("What the customer pays; settlement prices the parts used with it."))

    class Meta:
        model = Part
        fields = ["sku", "barcode", "name", "compatible_models", "unit", "reorder_point", "reorder_qty", "supplier",
                  "is_active"]

    field_order = ["sku", "barcode", "name", "compatible_models", "unit", "cost", "price", "reorder_point",
                   "reorder_qty", "supplier", "is_active"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["cost"] = self.instance.cost_yuan.quantize(Decimal("0.01"))
            self.initial["price"] = self.instance.price_yuan.quantize(Decimal("0.01"))
        for name in ("reorder_point", "reorder_qty"):
            self.fields[name].max_value = MAX_QUANTITY
            self.fields[name].widget.attrs["max"] = MAX_QUANTITY
            self.fields[name].validators.append(MaxValueValidator(MAX_QUANTITY))

    def service_fields(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["cost_fen"] = int(self.cleaned_data["cost"] * 100)
        data["price_fen"] = int(self.cleaned_data["price"] * 100)
        return data


class WarehouseForm(BootstrapFormMixin, forms.ModelForm):
    owner = StaffChoiceField(label=_("engineer (van)"), queryset=None, required=False)
    keeper = StaffChoiceField(label=_("warehouse keeper"), queryset=None, required=False)

    class Meta:
        model = Warehouse
        formfield_callback = scoped_formfield
        fields = ["code", "name", "kind", "region", "store", "owner", "keeper", "address", "latitude", "longitude",
                  "is_active"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = Region.objects.order_by("code")
        self.fields["store"].queryset = Store.objects.order_by("code")
        self.fields["owner"].queryset = staff_users()
        self.fields["keeper"].queryset = staff_users()

    def clean(self):
        data = super().clean()
        # Said on the field before the model's constraint check, which would name the constraint.
        if data.get("kind") == WarehouseKind.VAN and not data.get("owner") and "owner" not in self.errors:
            self.add_error("owner", _("A van belongs to one engineer: choose them."))
        return data

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class BomLineForm(BootstrapFormMixin, forms.Form):
    part = forms.ModelChoiceField(label=_("Part"), queryset=Part.objects.none())
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY, initial=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["part"].queryset = Part.objects.filter(is_active=True).order_by("sku")
