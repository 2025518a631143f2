"""Admin for notification templates and preferences, and the outbox with its dead letters:
filter by status, read the last error, retry."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from scrm.admin import TenantAdminForm, TenantModelAdmin

from . import services
from .models import CustomerOptOut, Notification, NotificationTemplate, Preference


class NotificationTemplateAdminForm(TenantAdminForm):
    """The same sandbox check as the managers' editor: errors on the field, with the line."""

    def clean(self):
        cleaned = super().clean()
        errors = services.template_clean(
            channel=cleaned.get("channel", ""), subject=(cleaned.get("subject") or "").strip(),
            body=cleaned.get("body") or "", sms_template_code=(cleaned.get("sms_template_code") or "").strip(),
        )
        for field, message in errors.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(TenantModelAdmin):
    form = NotificationTemplateAdminForm
    list_display = ["event", "channel", "language", "subject", "updated_at"]
    list_filter = ["event", "channel", "language"]
    search_fields = ["subject", "body"]


@admin.register(Preference)
class PreferenceAdmin(TenantModelAdmin):
    list_display = ["user", "event", "channels", "min_priority", "quiet_start", "quiet_end"]
    list_filter = ["event", "min_priority"]
    raw_id_fields = ["user"]


@admin.register(CustomerOptOut)
class CustomerOptOutAdmin(TenantModelAdmin):
    list_display = ["customer", "created_at"]
    raw_id_fields = ["customer"]


@admin.register(Notification)
class NotificationAdmin(TenantModelAdmin):
    list_display = ["created_at", "event", "channel", "status", "attempts", "address", "ticket", "last_error", "note"]
    list_filter = ["status", "channel", "event"]
    search_fields = ["address", "idempotency_key", "ticket__number"]
    list_select_related = ["ticket"]
    readonly_fields = [f.name for f in Notification._meta.fields if f.name != "tenant"]
    actions = ["retry"]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Retry delivery"), permissions=["change"])
    def retry(self, request, queryset):
        count = sum(services.notification_retry(notification=n) for n in queryset)
        self.message_user(request, ngettext("%(n)d notification queued again.", "%(n)d notifications queued again.",
                                            count) % {"n": count}, messages.SUCCESS)
