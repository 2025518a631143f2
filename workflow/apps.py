"""App config of workflow: a template's published workflow is cached per tenant (scrm.config_cache)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = _("Workflow")

    def ready(self):
        from scrm.config_cache import config_watch

        from .models import Workflow, WorkflowVersion

        config_watch(Workflow, WorkflowVersion)
