"""Workflow definitions (a draft graph per ticket template, published into immutable versions)
and the state of a running ticket: tokens that sit on nodes, and the tasks people act on."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from scrm.models import TenantOwned
from tickets.models import Ticket, TicketTemplate


class Workflow(TenantOwned):
    """The workflow of one ticket template: a draft graph managers edit, and the version new
    tickets start on. Graph format: see workflow/graph.py."""

    template = models.OneToOneField(TicketTemplate, on_delete=models.CASCADE, related_name="workflow",
                                    verbose_name=_("ticket template"))
    name = models.CharField(_("name"), max_length=60)
    draft = models.JSONField(_("draft graph"), default=dict, blank=True)
    current_version = models.ForeignKey("WorkflowVersion", on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="+", verbose_name=_("published version"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        ordering = ["name"]

    def __str__(self):
        return self.name


class WorkflowVersion(TenantOwned):
    """A published, frozen graph. Tickets in flight stay on the version they started with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    graph = models.JSONField(_("graph"))
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    class Meta:
        verbose_name = _("workflow version")
        verbose_name_plural = _("workflow versions")
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_unique_number")]

    def __str__(self):
        return f"{self.workflow_id} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Workflow versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class Run(TenantOwned):
    """A ticket's journey through one workflow version (one per ticket)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="workflow_run")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    is_finished = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")


class TokenState(models.TextChoices):
    ACTIVE = "active", _("Active")
    WAITING = "waiting", _("Waiting at join")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Token(TenantOwned):
    """A marker on a node of a run. Parallel branches hold one token each; a join merges them."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tokens")
    node = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=TokenState.choices, default=TokenState.ACTIVE)
    # The split that created this branch token (for the join to know whom to wait for).
    split_token = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="branches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "state"], name="token_run_state")]


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Task(TenantOwned):
    """One person's piece of work at a node: what they may do, by when, and what they did.
    A countersign node has one task per handler."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tasks")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="tasks")
    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="tasks")
    node = models.CharField(max_length=40)
    node_name = models.CharField(max_length=60)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+", verbose_name=_("handler"))
    backup = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", verbose_name=_("backup handler"))
    co_handlers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    is_returned = models.BooleanField(default=False, help_text=_("Created because a later node returned the ticket."))
    due_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=16, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    # Why the handler rule picked the assignee: every candidate weighed, as
    # workflow.routing.HandlerChoice.reasons (JSON with a code, so pages render it in their language).
    handler_reasons = models.JSONField(_("why this handler"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "assignee", "status", "due_at"], name="task_my_queue"),
            models.Index(fields=["tenant", "ticket", "status"], name="task_ticket"),
            models.Index(fields=["due_at"], name="task_due_open", condition=Q(status="open")),
        ]

    def __str__(self):
        return f"{self.ticket_id}:{self.node}"


class Workload(TenantOwned):
    """How many open tasks a person holds (as handler) in a tenant: a roll-up of Task kept by
    workflow/lifecycle.py, the one writer of tasks, so handler rules read a person's load in one
    indexed row instead of counting their open tasks on every ticket (a count that grows with
    the backlog). `workload_recount` says whether it matches the tasks; it must, always."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    open_tasks = models.IntegerField(default=0)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("workload")
        verbose_name_plural = _("workloads")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="workload_unique_user"),
            models.CheckConstraint(condition=Q(open_tasks__gte=0), name="workload_not_negative"),
        ]

    def __str__(self):
        return f"{self.user_id}: {self.open_tasks}"
