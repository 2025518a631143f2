"""Admin for workflows: read-only views of definitions, versions, runs and tasks. Workflows are
edited in the designer (/config/workflows/) and move through the engine, never here."""

from django.contrib import admin

from scrm.admin import ReadOnlyAdmin

from .models import Run, Task, Workflow, WorkflowVersion


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
