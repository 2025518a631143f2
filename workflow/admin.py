"""Admin for workflows: read-only views of definitions, versions, runs, tasks and business
calendars. Workflows are edited in the designer (/config/workflows/) and move through the engine,
calendars change through workflow.services; never here."""

from django.contrib import admin

from scrm.admin import ReadOnlyAdmin

from .models import BusinessCalendar, CalendarDay, Run, Task, Workflow, WorkflowVersion


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "template", "current_version", "updated_at"]
    list_select_related = ["template", "current_version"]
    search_fields = ["name", "template__name", "template__slug"]


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "number", "published_at", "published_by"]
    list_select_related = ["workflow", "published_by"]
    search_fields = ["workflow__name"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "version", "is_finished", "started_at", "finished_at"]
    list_filter = ["is_finished"]
    list_select_related = ["ticket", "version"]
    search_fields = ["ticket__number"]


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "node_name", "assignee", "status", "due_at", "action", "completed_by", "completed_at"]
    list_filter = ["status", "is_returned"]
    list_select_related = ["ticket", "assignee", "completed_by"]
    search_fields = ["ticket__number", "node", "node_name"]


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    fields = ["date", "kind", "name", "hours_like", "hours"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(ReadOnlyAdmin):
    """Calendars change through workflow.services (validated, versioned) and calendar_import."""

    list_display = ["name", "time_zone", "is_24x7", "is_default", "version", "updated_at"]
    list_filter = ["is_24x7", "is_default"]
    search_fields = ["name"]
    inlines = [CalendarDayInline]
