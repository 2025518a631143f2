"""URLs of the workflow pages (include at the site root): the designer under /config/workflows/,
business calendars under /config/calendars/, SLA policies under /config/sla/, the work queues at
/work/, and the ticket panel and task actions under /workflow/."""

from django.urls import path

from .views import calendars, designer, dispatch, panel, queues, sla

urlpatterns = [
    path("config/workflows/", designer.WorkflowListView.as_view(), name="workflow-list"),
    path("config/workflows/new/", designer.WorkflowCreateView.as_view(), name="workflow-create"),
    path("config/workflows/<int:pk>/", designer.DesignerView.as_view(), name="workflow-designer"),
    path("config/workflows/<int:pk>/node/", designer.NodeFormView.as_view(), name="workflow-node"),
    path("config/workflows/<int:pk>/node/delete/", designer.NodeDeleteView.as_view(), name="workflow-node-delete"),
    path("config/workflows/<int:pk>/transition/", designer.TransitionFormView.as_view(), name="workflow-transition"),
    path("config/workflows/<int:pk>/transition/delete/", designer.TransitionDeleteView.as_view(),
         name="workflow-transition-delete"),
    path("config/workflows/<int:pk>/diagram/", designer.DiagramView.as_view(), name="workflow-diagram"),
    path("config/workflows/<int:pk>/validate/", designer.ValidateView.as_view(), name="workflow-validate"),
    path("config/workflows/<int:pk>/publish/", designer.PublishView.as_view(), name="workflow-publish"),
    path("config/workflows/<int:pk>/export/", designer.ExportView.as_view(), name="workflow-export"),
    path("config/workflows/<int:pk>/import/", designer.ImportView.as_view(), name="workflow-import"),
    path("config/calendars/", calendars.CalendarListView.as_view(), name="workflow-calendar-list"),
    path("config/calendars/new/", calendars.CalendarCreateView.as_view(), name="workflow-calendar-create"),
    path("config/calendars/<int:pk>/", calendars.CalendarView.as_view(), name="workflow-calendar"),
    path("config/calendars/<int:pk>/import/", calendars.CalendarImportView.as_view(),
         name="workflow-calendar-import"),
    path("config/calendars/<int:pk>/days/delete/", calendars.CalendarDayDeleteView.as_view(),
         name="workflow-calendar-day-delete"),
    path("config/sla/", sla.SlaListView.as_view(), name="workflow-sla-list"),
    path("config/sla/new/", sla.SlaCreateView.as_view(), name="workflow-sla-create"),
    path("config/sla/export/", sla.SlaExportView.as_view(), name="workflow-sla-export"),
    path("config/sla/import/", sla.SlaImportView.as_view(), name="workflow-sla-import"),
    path("config/sla/<int:pk>/", sla.SlaView.as_view(), name="workflow-sla"),
    path("config/sla/<int:pk>/delete/", sla.SlaDeleteView.as_view(), name="workflow-sla-delete"),
    path("work/", queues.WorkQueueView.as_view(), name="work-queue"),
    path("workflow/ticket/<int:pk>/panel/", panel.TicketPanelView.as_view(), name="workflow-ticket-panel"),
    path("workflow/task/<int:pk>/act/", panel.TaskActView.as_view(), name="workflow-task-act"),
    path("workflow/pool/", dispatch.PoolView.as_view(), name="workflow-pool"),
    path("workflow/pool/<int:pk>/assign/", dispatch.PoolAssignView.as_view(), name="workflow-pool-assign"),
    path("workflow/pool/<int:pk>/redispatch/", dispatch.PoolRedispatchView.as_view(), name="workflow-pool-redispatch"),
    path("workflow/dispatch/simulate/", dispatch.SimulateView.as_view(), name="workflow-dispatch-simulate"),
]
