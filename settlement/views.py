"""Settlement pages: runs (start, progress, review/approve/pay, statements, export), an
engineer's earnings on the phone, the regional ranking, rules with preview, the price book.
Thin: settlement.selectors reads, settlement.services writes and validates."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.views import ObjectView, StaffView
from tickets.models import Ticket

from . import selectors
from .calculator import ticket_settle
from .forms import KIND_LABELS, ImportForm, PriceForm, RuleForm, RunStartForm
from .imports import MAX_BYTES as MAX_IMPORT_BYTES
from .imports import dataset_load, prices_import, rules_import
from .inputs import ticket_input
from .models import SettlementRule
from .resources import ServicePriceResource, SettlementRuleResource, StatementLineResource
from .services import (
    active_rules,
    price_set,
    rule_save,
    rule_spec,
    run_approve,
    run_pay,
    run_retry,
    run_review,
    run_send_back,
    run_start,
)
from .services.runs import run_lines

RUN_ACTIONS = {"review": run_review, "approve": run_approve, "pay": run_pay, "send_back": run_send_back,
               "retry": run_retry}


class SettlementView(StaffView):
    """Staff of the tenant; `managers_only` pages are for finance, admins and managers."""

    managers_only = True

    def dispatch(self, request, *args, **kwargs):
        if (request.user.is_authenticated and getattr(request, "tenant", None) is not None
                and self.managers_only and not selectors.can_manage(user=request.user)):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class HomeView(SettlementView):
    managers_only = False

    def get(self, request):
        # The page each role starts from, rendered here (no redirect) so the sidebar link is one hop.
        if selectors.can_manage(user=request.user):
            return RunListView.get(self, request)
        if selectors.is_regional_manager(user=request.user):
            return RankingView.get(self, request)
        return MyEarningsView.get(self, request)


class RunListView(SettlementView):
    def get(self, request, form=None, status=200):
        return render(request, "settlement/run_list.html", {
            "runs": selectors.run_list(), "form": form or RunStartForm(), "can_approve":
            selectors.can_approve(user=request.user)}, status=status)

    def post(self, request):
        form = RunStartForm(request.POST)
        if form.is_valid():
            try:
                run = run_start(tenant=request.tenant, period_kind=form.cleaned_data["period_kind"],
                                day=form.cleaned_data["day"], actor=request.user)
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                messages.success(request, _("The run has started; this page shows its progress."))
                return redirect("settlement-run", pk=run.pk)
        return self.get(request, form=form, status=400)


class RunView(SettlementView, ObjectView):
    def load(self, pk):
        return selectors.run_get(pk=pk)

    def get(self, request, pk):
        run = self.object
        return render(request, "settlement/run_detail.html", {
            "run": run, "statements": selectors.run_statements(run=run), "windows": selectors.run_windows(run=run),
            "can_approve": selectors.can_approve(user=request.user)})

    def post(self, request, pk):
        action = RUN_ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            messages.error(request, _("Unknown action."))
            return redirect("settlement-run", pk=pk)
        try:
            action(run=self.object, actor=request.user)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Saved."))
        return redirect("settlement-run", pk=pk)


class RunProgressView(SettlementView, ObjectView):
    """The progress bar fragment htmx polls while the run works."""

    def load(self, pk):
        return selectors.run_get(pk=pk)

    def get(self, request, pk):
        response = render(request, "settlement/_progress.html", {
            "run": self.object, "windows": selectors.run_windows(run=self.object)})
        if not self.object.is_running:
            response["HX-Refresh"] = "true"  # done: reload the page with the statements
        return response


class StatementView(SettlementView, ObjectView):
    def load(self, pk):
        return selectors.run_get(pk=pk)

    def get(self, request, pk, party_pk):
        party = selectors.party_get(pk=party_pk)
        if party is None:
            raise Http404
        lines = selectors.statement_lines(run=self.object, party=party)
        return render(request, "settlement/statement.html", {
            "run": self.object, "party": party, "lines": lines, "total": sum(line.amount for line in lines)})


class RunExportView(SettlementView, ObjectView):
    FORMATS = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

    def load(self, pk):
        return selectors.run_get(pk=pk)

    def get(self, request, pk, fmt):
        if fmt not in self.FORMATS:
            raise Http404
        queryset = run_lines(self.object).select_related("party", "ticket", "breakdown").order_by("party__name", "id")
        dataset = StatementLineResource().export(queryset=queryset)
        body = dataset.export(fmt)
        response = HttpResponse(body.encode("utf-8-sig") if isinstance(body, str) else body,
                                content_type=self.FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="settlement-{self.object.period_start:%Y%m%d}.{fmt}"'
        return response


class MyEarningsView(SettlementView):
    managers_only = False

    def get(self, request):
        return render(request, "settlement/me.html", selectors.my_earnings(user=request.user))


class RankingView(SettlementView):
    managers_only = False

    def get(self, request):
        span = request.GET.get("span", "month")
        span = span if span in selectors.SPANS else "month"
        return render(request, "settlement/ranking.html", {
            "rows": selectors.ranking(user=request.user, span=span), "span": span})


class RuleListView(SettlementView):
    def get(self, request):
        return render(request, "settlement/rule_list.html", {"rules": selectors.rule_list(),
                                                             "labels": KIND_LABELS})


def _preview(form, rule_id):
    """The form's rule applied (unsaved) to the ticket it names, beside the active rules."""
    number = form.cleaned_data.get("preview_ticket")
    if not number:
        return None
    ticket = (Ticket.objects.filter(number=number).select_related("region", "store", "customer", "template")
              .first())
    if ticket is None:
        form.add_error("preview_ticket", _("No ticket with this number."))
        return None
    try:
        values = form.service_kwargs()
        draft = SettlementRule(pk=rule_id or 0, **values)
        rules = [r for r in active_rules() if r.id != rule_id] + [rule_spec(draft)]
        return {"ticket": ticket, "result": ticket_settle(ticket_input(ticket=ticket), rules)}
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None


class RuleEditView(SettlementView):
    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.rule = None

    def load(self, pk):
        if pk is None:
            return None
        rule = selectors.rule_get(pk=pk)
        if rule is None:
            raise Http404
        return rule

    def kind_for(self, request, rule):
        if rule is not None:
            return rule.kind
        return request.POST.get("kind") or request.GET.get("kind") or ""

    def get(self, request, pk=None):
        rule = self.load(pk)
        kind = self.kind_for(request, rule)
        if kind not in KIND_LABELS:
            # a new rule starts by choosing its kind: each kind has its own fields
            return render(request, "settlement/rule_kinds.html", {"kinds": list(KIND_LABELS.items())})
        form = RuleForm(initial=RuleForm.initial_of(rule) if rule else {"kind": kind}, kind=kind)
        return render(request, "settlement/rule_edit.html", {"form": form, "rule": rule,
                                                             "kind_label": KIND_LABELS[kind]})

    def post(self, request, pk=None):
        rule = self.load(pk)
        kind = self.kind_for(request, rule)
        form = RuleForm(request.POST, kind=kind)
        preview = None
        if form.is_valid():
            if request.POST.get("action") == "preview":
                preview = _preview(form, rule.pk if rule else None)
            else:
                try:
                    saved = rule_save(tenant=request.tenant, rule=rule, **form.service_kwargs())
                except ValidationError as exc:
                    form.add_service_errors(exc)
                else:
                    messages.success(request, _("Rule saved."))
                    return redirect("settlement-rule", pk=saved.pk)
        status = 200 if preview is not None and form.is_valid() and not form.errors else 400
        return render(request, "settlement/rule_edit.html", {"form": form, "rule": rule, "preview": preview,
                                                             "kind_label": KIND_LABELS.get(kind, "")},
                      status=status)


class PriceBookView(SettlementView):
    def get(self, request, form=None, status=200):
        return render(request, "settlement/prices.html", {"items": selectors.price_book(),
                                                          "form": form or PriceForm()}, status=status)

    def post(self, request):
        form = PriceForm(request.POST)
        if form.is_valid():
            try:
                price_set(tenant=request.tenant, **form.cleaned_data)
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                messages.success(request, _("Price saved."))
                return redirect("settlement-prices")
        return self.get(request, form=form, status=400)


EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _export_response(dataset, fmt: str, filename: str) -> HttpResponse:
    body = dataset.export(fmt)
    response = HttpResponse(body.encode("utf-8-sig") if isinstance(body, str) else body,
                            content_type=EXPORT_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


class PriceExportView(SettlementView):
    def get(self, request):
        fmt = request.GET.get("format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise Http404
        return _export_response(ServicePriceResource().export(queryset=selectors.price_rows()), fmt, "price-book")


class RuleExportView(SettlementView):
    def get(self, request):
        fmt = request.GET.get("format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise Http404
        return _export_response(SettlementRuleResource().export(queryset=selectors.rule_list()), fmt,
                                "settlement-rules")


class ImportView(SettlementView):
    """Upload a file, preview it (a dry run listing every wrong row), then import: the import
    checks everything again and writes all rows or none."""

    what = ""
    back = ""

    def importer(self, **kwargs):
        raise NotImplementedError

    def render_page(self, request, form, outcome=None, status=200):
        return render(request, "settlement/import.html", {
            "form": form, "outcome": outcome, "what": self.what, "back": self.back,
            "columns": self.columns, "tab": self.tab}, status=status)

    def get(self, request):
        return self.render_page(request, ImportForm())

    def post(self, request):
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_page(request, form, status=400)
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_IMPORT_BYTES:
                raise ValidationError(_("The file is larger than 1 MB."))
            dataset = dataset_load(content=upload.read(), filename=upload.name)
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error("file", message)
            return self.render_page(request, form, status=400)
        dry_run = request.POST.get("action") != "import"
        outcome = self.importer(tenant=request.tenant, dataset=dataset, dry_run=dry_run)
        if outcome.written:
            messages.success(request, _("Imported: %(new)d new, %(updated)d changed, %(unchanged)d unchanged.")
                             % {"new": outcome.new, "updated": outcome.updated, "unchanged": outcome.unchanged})
            return redirect(self.back)
        return self.render_page(request, form, outcome, status=400 if outcome.errors else 200)


class PriceImportView(ImportView):
    what = gettext_lazy("Import the price book")
    back = "settlement-prices"
    tab = "prices"
    columns = "item, price, effective_from, name, unit"

    def importer(self, **kwargs):
        return prices_import(**kwargs)


class RuleImportView(ImportView):
    what = gettext_lazy("Import rules")
    back = "settlement-rules"
    tab = "rules"
    columns = ("name, kind, params, condition, priority, exclusive, cap, minimum, effective_from, effective_to, "
               "is_active")

    def importer(self, **kwargs):
        return rules_import(**kwargs)
