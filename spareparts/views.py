"""Pages of the parts library (备件库): catalogue, stock by warehouse, the ledger, receive / adjust /
transfer forms, reorder requests and suggestions, and the ticket page's parts panel with scan to
consume. Thin: selectors read, services write."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.generic import TemplateView

from scrm.views import FormPageView, ObjectView, StaffView
from tickets.models import TicketTemplate
from tickets.selectors import ticket_get

from . import imports, selectors, services
from .forms import (
    AdjustForm,
    BomLineForm,
    ImportForm,
    PartForm,
    PurchaseOrderForm,
    ReceiveForm,
    ScanForm,
    TransferForm,
    WarehouseForm,
)
from .models import Part, PurchaseRequest, PurchaseStatus, Transfer, TransferStatus, Warehouse
from .resources import PartResource

VIEW_PERMISSION = "spareparts.view_part"
KEEP_PERMISSION = "spareparts.change_stock"
WAREHOUSE_PERMISSION = "spareparts.change_warehouse"
BOM_PERMISSION = "spareparts.change_billofmaterials"
PURCHASE_PERMISSION = "spareparts.change_purchaserequest"


def _errors_into(form, exc):
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class PartListView(StaffView, TemplateView):
    permission = VIEW_PERMISSION
    template_name = "spareparts/parts.html"

    def get_context_data(self, **kwargs):
        q = self.request.GET.get("q", "").strip()[:50]
        return super().get_context_data(page=self.paginate(selectors.part_list(q=q)), q=q,
                                        query=self.querystring(), **kwargs)


class PartSearchView(StaffView):
    """The `parts` field's search box: up to 20 matches as JSON."""

    permission = VIEW_PERMISSION

    def get(self, request):
        rows = selectors.part_search(q=request.GET.get("q", ""))
        return JsonResponse({"results": [{"sku": p.sku, "name": p.name, "unit": p.unit} for p in rows]})


class StockListView(StaffView, TemplateView):
    permission = VIEW_PERMISSION
    template_name = "spareparts/stock.html"

    def get_context_data(self, **kwargs):
        warehouse_id = self.int_param("warehouse")
        warehouse = Warehouse.objects.filter(pk=warehouse_id).first() if warehouse_id else None
        low = self.request.GET.get("low") == "1"
        return super().get_context_data(
            page=self.paginate(selectors.stock_list(warehouse=warehouse, low_only=low)),
            warehouses=selectors.warehouse_list(), warehouse=warehouse, low=low, query=self.querystring(), **kwargs)


class LedgerView(StaffView, TemplateView):
    permission = VIEW_PERMISSION
    template_name = "spareparts/ledger.html"

    def get_context_data(self, **kwargs):
        warehouse_id = self.int_param("warehouse")
        warehouse = Warehouse.objects.filter(pk=warehouse_id).first() if warehouse_id else None
        return super().get_context_data(page=self.paginate(selectors.movement_list(warehouse=warehouse)),
                                        warehouses=selectors.warehouse_list(), warehouse=warehouse,
                                        query=self.querystring(), **kwargs)


class _StockFormView(StaffView):
    permission = KEEP_PERMISSION
    form_class: type = ReceiveForm
    title = ""
    done = ""

    def get(self, request):
        return self.page(self.form_class())

    def page(self, form, status=200):
        return render(self.request, "spareparts/form.html", {"form": form, "title": self.title}, status=status)

    def post(self, request):
        form = self.form_class(request.POST)
        if form.is_valid():
            try:
                self.save(form.cleaned_data)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, self.done)
                return redirect("parts-stock")
        return self.page(form, status=400)


class ReceiveView(_StockFormView):
    form_class = ReceiveForm

    @property
    def title(self):
        return _("Receive parts")

    @property
    def done(self):
        return _("Received.")

    def save(self, data):
        services.stock_receive(warehouse=data["warehouse"], part=data["part"], quantity=data["quantity"],
                               actor=self.request.user, reason=data.get("reason") or "")


class AdjustView(_StockFormView):
    form_class = AdjustForm

    @property
    def title(self):
        return _("Adjust stock")

    @property
    def done(self):
        return _("Stock adjusted.")

    def save(self, data):
        services.stock_adjust(warehouse=data["warehouse"], part=data["part"], delta=data["delta"],
                              reason=data["reason"], actor=self.request.user)


class TransferView(StaffView):
    permission = KEEP_PERMISSION

    def get(self, request):
        return self.page(TransferForm())

    def page(self, form, status=200):
        return render(self.request, "spareparts/transfers.html",
                      {"form": form, "transfers": selectors.transfer_list()[:50]}, status=status)

    def post(self, request):
        form = TransferForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.transfer_create(part=data["part"], source=data["source"], destination=data["destination"],
                                         quantity=data["quantity"], actor=request.user)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, _("Transfer sent: in transit until the destination receives it."))
                return redirect("parts-transfers")
        return self.page(form, status=400)


class TransferReceiveView(StaffView, ObjectView):
    permission = KEEP_PERMISSION

    def load(self, pk):
        return Transfer.objects.filter(pk=pk).select_related("part", "source", "destination").first()

    def post(self, request, pk):
        transfer = self.object
        if transfer.status != TransferStatus.IN_TRANSIT:
            messages.error(request, _("This transfer was already received."))
            return redirect("parts-transfers")
        services.transfer_receive(transfer=transfer, actor=request.user)
        messages.success(request, _("Transfer received."))
        return redirect("parts-transfers")


class ReorderView(StaffView, TemplateView):
    permission = VIEW_PERMISSION
    template_name = "spareparts/reorder.html"

    def get_context_data(self, **kwargs):
        days = self.int_param("days") or 90
        days = min(max(days, 7), 365)
        status = self.request.GET.get("status", "open")
        if status not in selectors.PURCHASE_FILTERS:
            status = "open"
        return super().get_context_data(
            requests=selectors.purchase_request_list(status=status)[:100], status=status,
            statuses=[("open", pgettext("purchase requests", "Open")), *PurchaseStatus.choices, ("all", _("All"))],
            can_order=self.request.user.has_perm(PURCHASE_PERMISSION),
            suggestions=selectors.reorder_suggestions(days=days), days=days, **kwargs)


class _PurchaseView(StaffView, ObjectView):
    permission = PURCHASE_PERMISSION

    def load(self, pk):
        return PurchaseRequest.objects.filter(pk=pk).select_related("part", "warehouse").first()


class PurchaseOrderView(_PurchaseView):
    """Mark a draft purchase request ordered: supplier, quantity, expected delivery."""

    def get(self, request, pk):
        if self.object.status != PurchaseStatus.DRAFT:
            messages.error(request, _("Only a draft request can be ordered; this one is no longer a draft."))
            return redirect("parts-reorder")
        return self.page(PurchaseOrderForm(initial={"supplier": self.object.part.supplier,
                                                    "quantity": self.object.quantity}))

    def page(self, form, status=200):
        r = self.object
        return render(self.request, "spareparts/form.html", {
            "form": form, "active": "reorder", "title": _("Order %(part)s for %(warehouse)s")
            % {"part": r.part.name, "warehouse": r.warehouse.name}}, status=status)

    def post(self, request, pk):
        form = PurchaseOrderForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.purchase_order(request=self.object, supplier=data["supplier"], quantity=data["quantity"],
                                        expected_on=data["expected_on"], actor=request.user)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, _("Marked as ordered."))
                return redirect(reverse("parts-reorder") + "?status=ordered")
        return self.page(form, status=400)


class PurchaseCancelView(_PurchaseView):
    def post(self, request, pk):
        try:
            services.purchase_cancel(request=self.object, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Purchase request cancelled."))
        return redirect("parts-reorder")


class _TicketPartsBase(StaffView, ObjectView):
    permission = VIEW_PERMISSION

    def load(self, pk):
        return ticket_get(user=self.request.user, pk=pk)

    def panel(self, ticket, form=None, status=200, message=""):
        return render(self.request, "spareparts/_ticket_parts.html", {
            "ticket": ticket, "reservations": list(selectors.ticket_reservations(ticket=ticket)),
            "used": selectors.ticket_parts_priced(ticket=ticket),
            "form": form or ScanForm(), "message": message,
            "can_scan": self.request.user.has_perm("tickets.change_ticket"),
        }, status=status)


class TicketPartsView(_TicketPartsBase):
    """The ticket page's parts panel (htmx): what is reserved where, what was used, the scan box.
    Someone who may see the ticket but not the parts library (finance) gets an empty panel."""

    permission = None

    def get(self, request, pk):
        if not request.user.has_perm(VIEW_PERMISSION):
            return HttpResponse("")
        return self.panel(self.object)


class TicketScanView(_TicketPartsBase):
    """Scan (or type) a part's barcode or SKU on site: consume it for this ticket."""

    def post(self, request, pk):
        ticket = self.object
        if not request.user.has_perm("tickets.change_ticket"):
            raise Http404
        form = ScanForm(request.POST)
        if form.is_valid():
            try:
                movement = services.part_scan_consume(ticket=ticket, code=form.cleaned_data["code"],
                                                      quantity=form.cleaned_data["quantity"], actor=request.user)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                return self.panel(ticket, message=_("%(part)s ×%(n)d used.") % {
                    "part": movement.part.name, "n": movement.quantity})
        return self.panel(ticket, form=form, status=200 if request.headers.get("HX-Request") else 400)


class ImportView(StaffView):
    """Upload a catalogue or a stock count: 预览 shows every row's problems and writes nothing; 导入
    writes only when no row is wrong."""

    permission = KEEP_PERMISSION

    def get(self, request):
        return self.page(ImportForm())

    def page(self, form, outcome=None, status=200):
        return render(self.request, "spareparts/import.html", {"form": form, "outcome": outcome}, status=status)

    def post(self, request):
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.page(form, status=400)
        upload = form.cleaned_data["file"]
        try:
            dataset = imports.dataset_load(content=upload.read(imports.MAX_BYTES + 1), filename=upload.name)
        except ValidationError as exc:
            form.add_error("file", exc.messages)
            return self.page(form, status=400)
        dry_run = request.POST.get("action") != "import"
        if form.cleaned_data["kind"] == "catalogue":
            outcome = imports.parts_import(tenant=request.tenant, dataset=dataset, dry_run=dry_run)
        else:
            outcome = imports.stock_counts_import(tenant=request.tenant, dataset=dataset, actor=request.user,
                                                  dry_run=dry_run)
        if outcome.written:
            messages.success(request, _("Imported."))
            return redirect("parts-catalogue")
        return self.page(form, outcome=outcome, status=400 if outcome.errors else 200)


class ExportView(StaffView):
    """The catalogue or the stock levels as CSV (UTF-8 with BOM, so Excel reads the Chinese)."""

    permission = VIEW_PERMISSION

    def get(self, request, what):
        if what == "catalogue":
            text = PartResource(tenant=request.tenant).export().csv
        else:
            rows = selectors.stock_list()
            import tablib

            data = tablib.Dataset(headers=["warehouse", "sku", "name", "on_hand", "reserved", "counted"])
            for s in rows:
                data.append([s.warehouse.code, s.part.sku, s.part.name, s.on_hand, s.reserved, s.on_hand])
            text = data.csv
        response = HttpResponse("\ufeff" + text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="parts-{what}.csv"'
        return response


# --- the manager's edit pages: catalogue, warehouses, bills of materials ---------------------------


class PartCreateView(FormPageView):
    permission = "spareparts.add_part"
    form_class = PartForm

    def get_title(self):
        return _("New part")

    def save(self, form):
        return services.part_create(tenant=self.request.tenant, actor=self.request.user, **form.service_fields())

    def success_url(self, obj):
        return reverse("parts-catalogue") + f"?q={obj.sku}"

    def cancel_url(self):
        return reverse("parts-catalogue")


class PartUpdateView(PartCreateView):
    permission = "spareparts.change_part"

    def get_object(self):
        part = Part.objects.filter(pk=self.kwargs["pk"]).first()
        if part is None:
            raise Http404
        return part

    def get_title(self):
        return _("Edit part")

    def save(self, form):
        return services.part_update(part=form.instance, actor=self.request.user, **form.service_fields())


class WarehouseListView(StaffView, TemplateView):
    permission = VIEW_PERMISSION
    template_name = "spareparts/warehouses.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(page=self.paginate(selectors.warehouse_list().select_related("keeper")),
                                        query=self.querystring(), **kwargs)


class WarehouseCreateView(FormPageView):
    permission = "spareparts.add_warehouse"
    form_class = WarehouseForm

    def get_title(self):
        return _("New warehouse")

    def save(self, form):
        return services.warehouse_create(tenant=self.request.tenant, actor=self.request.user,
                                         **form.service_fields())

    def success_url(self, obj):
        return reverse("parts-warehouses")

    def cancel_url(self):
        return reverse("parts-warehouses")


class WarehouseUpdateView(WarehouseCreateView):
    permission = WAREHOUSE_PERMISSION

    def get_object(self):
        warehouse = Warehouse.objects.filter(pk=self.kwargs["pk"]).first()
        if warehouse is None:
            raise Http404
        return warehouse

    def get_title(self):
        return _("Edit warehouse")

    def save(self, form):
        return services.warehouse_update(warehouse=form.instance, actor=self.request.user, **form.service_fields())


class BomListView(StaffView, TemplateView):
    """The ticket templates with how many parts their bill of materials lists."""

    permission = BOM_PERMISSION
    template_name = "spareparts/bom_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(templates=selectors.bom_templates(), **kwargs)


class BomEditView(StaffView, ObjectView):
    """One template's bill of materials: add a part (or change its quantity), remove a line."""

    permission = BOM_PERMISSION

    def load(self, pk):
        return TicketTemplate.objects.filter(pk=pk).first()

    def page(self, form, status=200):
        return render(self.request, "spareparts/bom.html", {
            "template": self.object, "lines": selectors.bom_lines(template=self.object), "form": form,
        }, status=status)

    def get(self, request, pk):
        return self.page(BomLineForm())

    def post(self, request, pk):
        if request.POST.get("action") == "remove":
            line = request.POST.get("line", "")
            try:
                services.bom_line_remove(template=self.object, line_id=int(line) if line.isdigit() else None,
                                         actor=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return self.page(BomLineForm(), status=400)
            messages.success(request, _("Line removed."))
            return redirect("parts-bom-edit", pk=pk)
        form = BomLineForm(request.POST)
        if form.is_valid():
            try:
                services.bom_line_set(template=self.object, part=form.cleaned_data["part"],
                                      quantity=form.cleaned_data["quantity"], actor=request.user)
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect("parts-bom-edit", pk=pk)
        return self.page(form, status=400)
