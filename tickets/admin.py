"""Admin for ticket configuration and a read-only view of tickets and their timeline.
Tickets change through the ticket pages (services); the admin never edits them."""

from django.contrib import admin

from scrm.admin import ReadOnlyAdmin, TenantModelAdmin

from .models import (
    ApiKey,
    Attachment,
    Category,
    ClassificationRule,
    IdempotencyRecord,
    InboundMessage,
    TemplateVersion,
    Ticket,
    TicketTemplate,
    TimelineEvent,
)


@admin.register(Category)
class CategoryAdmin(TenantModelAdmin):
    list_display = ["name", "code", "order"]
    search_fields = ["name", "code"]


@admin.register(TicketTemplate)
class TicketTemplateAdmin(TenantModelAdmin):
    list_display = ["name", "slug", "category", "number_prefix", "is_public", "is_active", "current_version"]
    list_filter = ["category", "is_public", "is_active"]
    search_fields = ["name", "slug"]
    list_select_related = ["category", "current_version"]
    readonly_fields = ["current_version", "draft_fields"]


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ["template", "number", "published_at", "published_by"]
    list_select_related = ["template", "published_by"]
    search_fields = ["template__name"]


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    fields = ["created_at", "kind", "actor_label", "is_public", "message", "changes"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["number", "title", "status", "priority", "source", "customer", "store", "assignee", "created_at"]
    list_filter = ["status", "priority", "source", "template"]
    search_fields = ["number", "title", "customer__name", "customer__phone"]
    list_select_related = ["customer", "store", "assignee"]
    inlines = [TimelineInline]
    show_full_result_count = False


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "kind", "actor_label", "is_public", "created_at"]
    list_filter = ["kind", "is_public"]
    search_fields = ["ticket__number", "message"]
    list_select_related = ["ticket"]
    show_full_result_count = False


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "ticket", "size", "content_type", "is_public", "created_at"]
    search_fields = ["name", "ticket__number"]
    list_select_related = ["ticket"]


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(TenantModelAdmin):
    list_display = ["name", "match", "set_template", "set_category", "set_priority", "order", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    filter_horizontal = ["add_tags"]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "prefix", "is_active", "created_at", "last_used_at"]
    search_fields = ["name", "prefix"]


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = ["channel", "external_id", "sender", "ticket", "created_at"]
    list_filter = ["channel"]
    search_fields = ["external_id", "sender"]
    list_select_related = ["ticket"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["key", "ticket", "created_at"]
    search_fields = ["key"]
    list_select_related = ["ticket"]
