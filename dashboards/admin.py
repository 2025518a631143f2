"""Admin of the 质检 rules and flags (tenant-scoped like every admin page)."""

from django.contrib import admin

from scrm.admin import TenantModelAdmin

from .models import QualityFlag, QualityRule


@admin.register(QualityRule)
class QualityRuleAdmin(TenantModelAdmin):
    list_display = ["name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]


@admin.register(QualityFlag)
class QualityFlagAdmin(TenantModelAdmin):
    list_display = ["ticket", "rule", "excerpt", "created_at", "reviewed_at"]
    list_filter = ["rule"]
    list_select_related = ["ticket", "rule"]
    raw_id_fields = ["ticket", "event"]
