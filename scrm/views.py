"""Staff pages of the core app: home, customers, opportunities, stores, regions, staff accounts,
tenant switch.
Thin: selectors read, services write, forms validate."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from . import selectors, services
from .forms import CustomerForm, OpportunityForm, StaffForm, StaffPasswordForm, StoreForm
from .models import CustomerTier, OpportunityStage, Role
from .panels import customer_panels
from .ratelimit import client_ip, rate_limited
from .tenancy import SESSION_TENANT_KEY, tenants_for_user

PAGE_SIZE = 25


class StaffView(LoginRequiredMixin, View):
    """Signed-in staff of the tenant in scope, holding `permission` (if set)."""

    permission = None

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.tenant is None:
            raise Http404(_("You have no seat in any tenant."))
        if self.permission and not request.user.has_perm(self.permission):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def paginate(self, queryset):
        paginator = Paginator(queryset, PAGE_SIZE)
        return paginator.get_page(self.request.GET.get("page"))

    def querystring(self):
        """The current filters without the page number, for pagination links."""
        params = self.request.GET.copy()
        params.pop("page", None)
        return params.urlencode()

    def int_param(self, name):
        value = self.request.GET.get(name, "")
        return int(value) if value.isdigit() else None


class ObjectView(View):
    """Loads the URL's object (`load(pk)`, None when missing or another tenant's) before the HTTP
    method is dispatched, so such an id is a 404 for every verb. Sits after StaffView in the
    bases: login and permission are checked first."""

    def load(self, pk):
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        self.object = self.load(kwargs["pk"])
        if self.object is None:
            raise Http404
        return super().dispatch(request, *args, **kwargs)


class HomeView(StaffView, TemplateView):
    template_name = "scrm/home.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(summary=selectors.dashboard_summary(user=self.request.user), **kwargs)


class TenantSwitchView(LoginRequiredMixin, View):
    """Switch the active tenant (POST); allowed tenants only, so a forged id changes nothing."""

    def post(self, request):
        wanted = request.POST.get("tenant", "")
        allowed = {t.pk for t in tenants_for_user(request.user)}
        if not wanted.isdigit() or int(wanted) not in allowed:
            raise Http404
        request.session[SESSION_TENANT_KEY] = int(wanted)
        target = request.POST.get("next") or reverse("home")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("home")
        return HttpResponseRedirect(target)


# --- customers ----------------------------------------------------------------------------

class CustomerListView(StaffView):
    permission = "scrm.view_customer"

    def get(self, request):
        filters = {
            "search": request.GET.get("q", "").strip()[:60],
            "tier": request.GET.get("tier", "") if request.GET.get("tier") in CustomerTier.values else "",
            "region_id": self.int_param("region"),
            "store_id": self.int_param("store"),
        }
        page = self.paginate(selectors.customer_list(user=request.user, **filters))
        context = {
            "page": page, "filters": filters, "tiers": CustomerTier.choices, "query": self.querystring(),
            "regions": selectors.visible_regions(user=request.user).order_by("code"),
        }
        template = "scrm/customers/_table.html" if request.headers.get("HX-Request") else "scrm/customers/list.html"
        return render(request, template, context)


class CustomerDetailView(StaffView, TemplateView):
    permission = "scrm.view_customer"
    template_name = "scrm/customers/detail.html"

    def get_context_data(self, **kwargs):
        customer = selectors.customer_get(user=self.request.user, pk=kwargs["pk"])
        if customer is None:
            raise Http404
        return super().get_context_data(
            customer=customer, opportunities=selectors.customer_opportunities(customer=customer),
            panels=customer_panels(customer=customer, user=self.request.user), **kwargs
        )


class FormPageView(StaffView):
    """GET shows the form, POST validates it and hands the cleaned data to a service; service
    errors come back as field errors on the same form."""

    form_class = None
    template_name = "scrm/form.html"
    title = ""

    def get_object(self):
        return None

    def new_instance(self):
        return self.form_class._meta.model(tenant=self.request.tenant)

    def get_form(self, data=None):
        instance = self.get_object() or self.new_instance()
        return self.form_class(data, instance=instance, user=self.request.user, initial=self.get_initial())

    def get_initial(self):
        return {}

    def get(self, request, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, **kwargs):
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                obj = self.save(form)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect(self.success_url(obj))
        return self.render_form(form, status=400)

    def render_form(self, form, status=200):
        return render(
            self.request, self.template_name,
            {"form": form, "title": self.get_title(), "cancel_url": self.cancel_url()}, status=status,
        )

    def get_title(self):
        return self.title

    def cancel_url(self):
        return self.request.META.get("HTTP_REFERER") or reverse("home")


class CustomerCreateView(FormPageView):
    permission = "scrm.add_customer"
    form_class = CustomerForm

    def get_title(self):
        return _("New customer")

    def save(self, form):
        data = dict(form.cleaned_data)
        tags = list(data.pop("tags"))
        return services.customer_create(tenant=self.request.tenant, tags=tags, **data)

    def success_url(self, obj):
        return reverse("customer-detail", args=[obj.pk])

    def cancel_url(self):
        return reverse("customer-list")


class CustomerUpdateView(CustomerCreateView):
    permission = "scrm.change_customer"

    def get_object(self):
        customer = selectors.customer_get(user=self.request.user, pk=self.kwargs["pk"])
        if customer is None:
            raise Http404
        return customer

    def get_title(self):
        return _("Edit customer")

    def save(self, form):
        data = dict(form.cleaned_data)
        tags = list(data.pop("tags"))
        return services.customer_update(customer=form.instance, tags=tags, **data)

    def cancel_url(self):
        return reverse("customer-detail", args=[self.kwargs["pk"]])


# --- opportunities ------------------------------------------------------------------------

class OpportunityListView(StaffView, TemplateView):
    permission = "scrm.view_opportunity"
    template_name = "scrm/opportunities/list.html"

    def get_context_data(self, **kwargs):
        stage = self.request.GET.get("stage", "")
        filters = {
            "search": self.request.GET.get("q", "").strip()[:60],
            "stage": stage if stage in OpportunityStage.values else "",
        }
        page = self.paginate(selectors.opportunity_list(user=self.request.user, **filters))
        return super().get_context_data(
            page=page, filters=filters, stages=OpportunityStage.choices, query=self.querystring(), **kwargs
        )


class OpportunityCreateView(FormPageView):
    permission = "scrm.add_opportunity"
    form_class = OpportunityForm

    def get_title(self):
        return _("New opportunity")

    def get_initial(self):
        customer = self.int_param("customer")
        return {"customer": customer, "owner": self.request.user.pk} if customer else {"owner": self.request.user.pk}

    def save(self, form):
        return services.opportunity_create(tenant=self.request.tenant, **form.cleaned_data)

    def success_url(self, obj):
        return reverse("customer-detail", args=[obj.customer_id])

    def cancel_url(self):
        return reverse("opportunity-list")


class OpportunityUpdateView(OpportunityCreateView):
    permission = "scrm.change_opportunity"

    def get_object(self):
        opportunity = selectors.opportunity_get(user=self.request.user, pk=self.kwargs["pk"])
        if opportunity is None:
            raise Http404
        return opportunity

    def get_initial(self):
        return {}

    def get_title(self):
        return _("Edit opportunity")

    def save(self, form):
        return services.opportunity_update(opportunity=form.instance, **form.cleaned_data)


# --- stores and regions -------------------------------------------------------------------

class StoreListView(StaffView, TemplateView):
    permission = "scrm.view_store"
    template_name = "scrm/stores/list.html"

    def get_context_data(self, **kwargs):
        filters = {"search": self.request.GET.get("q", "").strip()[:60], "region_id": self.int_param("region")}
        page = self.paginate(selectors.store_list(user=self.request.user, **filters))
        regions = selectors.visible_regions(user=self.request.user).order_by("code")
        return super().get_context_data(
            page=page, filters=filters, regions=regions, query=self.querystring(), **kwargs
        )


class StoreDetailView(StaffView, TemplateView):
    permission = "scrm.view_store"
    template_name = "scrm/stores/detail.html"

    def get_context_data(self, **kwargs):
        store = selectors.store_get(user=self.request.user, pk=kwargs["pk"])
        if store is None:
            raise Http404
        customers = selectors.customer_list(user=self.request.user, store_id=store.pk)[:20]
        return super().get_context_data(store=store, customers=customers, **kwargs)


class StoreCreateView(FormPageView):
    permission = "scrm.add_store"
    form_class = StoreForm

    def get_title(self):
        return _("New store")

    def save(self, form):
        return services.store_create(tenant=self.request.tenant, **form.cleaned_data)

    def success_url(self, obj):
        return reverse("store-detail", args=[obj.pk])

    def cancel_url(self):
        return reverse("store-list")


class StoreUpdateView(StoreCreateView):
    permission = "scrm.change_store"

    def get_object(self):
        store = selectors.store_get(user=self.request.user, pk=self.kwargs["pk"])
        if store is None:
            raise Http404
        return store

    def get_title(self):
        return _("Edit store")

    def save(self, form):
        return services.store_update(store=form.instance, **form.cleaned_data)


class RegionListView(StaffView, TemplateView):
    permission = "scrm.view_region"
    template_name = "scrm/regions/list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(regions=selectors.region_list(user=self.request.user), **kwargs)


# --- staff accounts (a tenant admin's, without the Django admin) ------------------------------

class StaffListView(StaffView, TemplateView):
    permission = "scrm.view_staffprofile"
    template_name = "scrm/staff/list.html"

    def get_context_data(self, **kwargs):
        role = self.request.GET.get("role", "")
        state = self.request.GET.get("state", "active")
        filters = {"search": self.request.GET.get("q", "").strip()[:40], "role": role if role in Role.values else "",
                   "active": {"active": True, "inactive": False}.get(state)}
        page = self.paginate(selectors.staff_list(**filters))
        return super().get_context_data(page=page, filters=filters, state=state, roles=Role.choices,
                                        query=self.querystring(), **kwargs)


def _staff_or_404(pk):
    profile = selectors.staff_get(pk=pk)
    if profile is None:
        raise Http404
    return profile


class StaffCreateView(StaffView):
    permission = "scrm.add_membership"
    creating = True

    def get_form(self, data=None):
        return StaffForm(data, creating=True)

    def get(self, request, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, **kwargs):
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                result = self.save(form)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return result
        return self.render_form(form, status=400)

    def save(self, form):
        profile = services.staff_create(tenant=self.request.tenant, **form.cleaned_data)
        if not form.cleaned_data["password"]:
            return _staff_link_page(self.request, profile, created=True)
        messages.success(self.request, _("%(name)s can now sign in as %(username)s.") % {
            "name": profile.display_name, "username": profile.user.username})
        return redirect("staff-list")

    def render_form(self, form, status=200):
        title = _("Add staff") if self.creating else _("Edit staff")
        return render(self.request, "scrm/form.html",
                      {"form": form, "title": title, "cancel_url": reverse("staff-list")}, status=status)


class StaffUpdateView(StaffCreateView):
    permission = "scrm.change_membership"
    creating = False

    def get_form(self, data=None):
        profile = self.profile = _staff_or_404(self.kwargs["pk"])
        initial = {"display_name": profile.display_name, "phone": profile.phone, "email": profile.user.email,
                   "role": profile.role, "home_store": profile.home_store_id, "skills": list(profile.skills.all()),
                   "teams": list(profile.teams.all()), "wecom_userid": profile.wecom_userid,
                   "max_open_tickets": profile.max_open_tickets, "on_duty": profile.on_duty}
        return StaffForm(data, creating=False, initial=initial)

    def save(self, form):
        services.staff_update(profile=self.profile, actor=self.request.user, **form.cleaned_data)
        messages.success(self.request, _("Saved."))
        return redirect("staff-list")


class StaffPasswordView(StaffView):
    """Set a new password for someone, or hand them a one-time link to set their own."""

    permission = "scrm.change_membership"

    def get(self, request, pk):
        return self.render_form(_staff_or_404(pk), StaffPasswordForm())

    def post(self, request, pk):
        profile = _staff_or_404(pk)
        form = StaffPasswordForm(request.POST)
        if form.is_valid():
            if not form.cleaned_data["password"]:
                return _staff_link_page(request, profile, created=False)
            try:
                services.staff_password_set(profile=profile, password=form.cleaned_data["password"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("The password of %(name)s was changed.") % {"name": profile.display_name})
                return redirect("staff-list")
        return self.render_form(profile, form, status=400)

    def render_form(self, profile, form, status=200):
        return render(self.request, "scrm/form.html", {
            "form": form, "title": _("Password of %(name)s") % {"name": profile.display_name},
            "cancel_url": reverse("staff-list")}, status=status)


def _staff_link_page(request, profile, *, created):
    link = request.build_absolute_uri(selectors.staff_password_link(profile=profile))
    return render(request, "scrm/staff/link.html", {"profile": profile, "link": link, "created": created})


class StaffActiveView(StaffView):
    """POST: deactivate or reactivate someone's seat in the tenant."""

    permission = "scrm.change_membership"

    def get(self, request, pk):
        _staff_or_404(pk)  # another tenant's staff is missing here, as on every route
        return redirect("staff-list")

    def post(self, request, pk):
        profile = _staff_or_404(pk)
        active = request.POST.get("active") == "1"
        try:
            services.staff_active_set(profile=profile, actor=request.user, active=active)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, (_("%(name)s can sign in again.") if active
                                       else _("%(name)s was deactivated.")) % {"name": profile.display_name})
        return redirect("staff-list")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email, with our templates; a few requests per address and minute, so
    the form cannot be used to flood a mailbox."""

    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.html"
    subject_template_name = "registration/password_reset_subject.txt"

    def post(self, request, *args, **kwargs):
        limit = settings.PASSWORD_RESET_RATE_PER_MINUTE
        if rate_limited(scope="password-reset", ident=client_ip(request), limit=limit):
            form = self.get_form()
            form.is_valid()
            form.add_error(None, _("Too many requests from your network. Please wait a minute and try again."))
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)
