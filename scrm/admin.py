"""Django admin for every core model. A tenant admin sees and edits only their tenant (the
request's scope does it); the superuser's admin is unscoped and shows the tenant column."""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from . import selectors
from .forms import LoginThrottleMixin, PhoneFormMixin, staff_users
from .models import (
    Customer,
    Membership,
    Opportunity,
    Region,
    RegionUserObjectPermission,
    Skill,
    StaffProfile,
    Store,
    StoreUserObjectPermission,
    Tag,
    Team,
    Tenant,
)


class AdminLoginForm(LoginThrottleMixin, AdminAuthenticationForm):
    """/admin/login/ counts failures like /login/: one limit per account and per address."""


admin.site.login_form = AdminLoginForm
admin.site.site_header = _("SCRM work orders · admin")
admin.site.site_title = _("SCRM admin")


class TenantAdminForm(forms.ModelForm):
    """Validates unique constraints including the tenant, and refuses related objects of
    another tenant (only the unscoped superuser could even pick one)."""

    def validate_unique(self):
        exclude = self._get_validation_exclusions()
        exclude.discard("tenant")
        try:
            self.instance.validate_unique(exclude=exclude)
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as exc:
            self._update_errors(exc)

    def clean(self):
        cleaned = super().clean()
        tenant_id = getattr(cleaned.get("tenant"), "pk", None) or self.instance.tenant_id
        for name, value in cleaned.items():
            items = list(value) if hasattr(value, "__iter__") and not isinstance(value, str) else [value]
            if any(getattr(item, "tenant_id", tenant_id) != tenant_id for item in items if hasattr(item, "pk")):
                self.add_error(name, _("This belongs to another tenant."))
        return cleaned


def tenant_users():
    """Users with a membership (active or not) in the tenant in scope: Membership is scoped, so
    evaluating this outside the request's scope raises instead of listing every user."""
    return get_user_model().objects.filter(memberships__in=Membership.objects.all()).distinct().order_by(
        "username")


class TenantModelAdmin(admin.ModelAdmin):
    form = TenantAdminForm
    # A selector `f(*, user)` narrowing what a non-superuser sees to what their role may see.
    visible = None

    def get_queryset(self, request):
        if self.visible is None or request.user.is_superuser:
            return super().get_queryset(request)
        qs = type(self).visible(user=request.user)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # The same answer for another tenant's object as for a missing one.
            raise Http404
        return obj

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("tenant")
        return exclude

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        return [*columns, "tenant"] if request.user.is_superuser else columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        return ["tenant", *filters] if request.user.is_superuser else filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A tenant admin picks users from a list of their tenant's members: a raw id box would
        # show any user's name for a typed id and accept it.
        if db_field.remote_field.model is get_user_model() and not request.user.is_superuser:
            kwargs["queryset"] = tenant_users()
            kwargs["widget"] = forms.Select()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.remote_field.model is get_user_model() and not request.user.is_superuser:
            kwargs["queryset"] = tenant_users()
            kwargs["widget"] = forms.SelectMultiple()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        base = super().get_form(request, obj, **kwargs)
        tenant = None if request.user.is_superuser else request.tenant

        class ScopedForm(base):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if tenant is not None and not self.instance.tenant_id:
                    self.instance.tenant = tenant

        return ScopedForm


class ReadOnlyAdmin(TenantModelAdmin):
    """Rows that only services write (append-only ledgers, run state): visible, never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["is_active"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = (
        lambda self, request, obj=None: request.user.is_superuser
    )


@admin.register(Membership)
class MembershipAdmin(TenantModelAdmin):
    list_display = ["user", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "user__first_name"]
    raw_id_fields = ["user"]


@admin.register(Region)
class RegionAdmin(TenantModelAdmin):
    visible = selectors.visible_regions
    list_display = ["name", "code", "parent", "settlement_class"]
    list_filter = ["settlement_class"]
    search_fields = ["name", "code"]


class StoreAdminForm(PhoneFormMixin, TenantAdminForm):
    pass


@admin.register(Store)
class StoreAdmin(TenantModelAdmin):
    form = StoreAdminForm
    visible = selectors.visible_stores
    list_display = ["name", "code", "region", "city", "is_active"]
    list_filter = ["region", "is_active"]
    search_fields = ["name", "code", "city", "address"]
    list_select_related = ["region"]


@admin.register(Team)
class TeamAdmin(TenantModelAdmin):
    list_display = ["name", "region", "lead"]
    list_filter = ["region"]
    search_fields = ["name"]
    list_select_related = ["region", "lead"]


@admin.register(Skill)
class SkillAdmin(TenantModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(TenantModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(StaffProfile)
class StaffProfileAdmin(TenantModelAdmin):
    list_display = ["display_name", "user", "home_store", "on_duty", "max_open_tickets"]
    list_filter = ["on_duty", "home_store__region", "skills"]
    search_fields = ["display_name", "user__username", "phone"]
    list_select_related = ["user", "home_store"]
    filter_horizontal = ["skills", "teams"]
    raw_id_fields = ["user"]


class CustomerAdminForm(PhoneFormMixin, TenantAdminForm):
    pass


@admin.register(Customer)
class CustomerAdmin(TenantModelAdmin):
    form = CustomerAdminForm
    visible = selectors.visible_customers
    list_display = ["name", "phone", "tier", "region", "store", "created_at"]
    list_filter = ["tier", "region", "tags"]
    search_fields = ["name", "phone", "wecom_external_userid", "wechat_openid"]
    list_select_related = ["region", "store"]
    filter_horizontal = ["tags"]
    raw_id_fields = ["owner"]


@admin.register(Opportunity)
class OpportunityAdmin(TenantModelAdmin):
    visible = selectors.visible_opportunities
    list_display = ["title", "customer", "amount", "stage", "owner", "signed_date"]
    list_filter = ["stage"]
    search_fields = ["title", "customer__name"]
    list_select_related = ["customer", "owner"]
    raw_id_fields = ["customer", "owner"]


class GrantAdmin(admin.ModelAdmin):
    """guardian grants on regions/stores; a tenant admin sees and grants within their tenant."""

    list_display = ["user", "permission", "content_object"]
    list_select_related = ["user", "permission", "content_object"]
    search_fields = ["user__username", "user__first_name"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(content_object__tenant=request.tenant)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = staff_users()
        if db_field.name == "permission":
            kwargs["queryset"] = Permission.objects.filter(codename__in=["manage_region", "manage_store"])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(RegionUserObjectPermission)
class RegionGrantAdmin(GrantAdmin):
    pass


@admin.register(StoreUserObjectPermission)
class StoreGrantAdmin(GrantAdmin):
    pass
