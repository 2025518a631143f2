"""URLs of the workflow pages (include at the site root): the designer under /config/workflows/,
the work queues at /work/, and the ticket panel and task actions under /workflow/."""

from django.urls import path

from . import views

urlpatterns = [
    path("config/workflows/", views.WorkflowListView.as_view(), name="workflow-list"),
    path("config/workflows/new/", views.WorkflowCreateView.as_view(), name="workflow-create"),
    path("config/workflows/<int:pk>/", views.DesignerView.as_view(), name="workflow-designer"),
    path("config/workflows/<int:pk>/node/", views.NodeFormView.as_view(), name="workflow-node"),
    path("config/workflows/<int:pk>/node/delete/", views.NodeDeleteView.as_view(), name="workflow-node-delete"),
    path("config/workflows/<int:pk>/transition/", views.TransitionFormView.as_view(), name="workflow-transition"),
    path("config/workflows/<int:pk>/transition/delete/", views.TransitionDeleteView.as_view(),
         name="workflow-transition-delete"),
    path("config/workflows/<int:pk>/diagram/", views.DiagramView.as_view(), name="workflow-diagram"),
    path("config/workflows/<int:pk>/validate/", views.ValidateView.as_view(), name="workflow-validate"),
    path("config/workflows/<int:pk>/publish/", views.PublishView.as_view(), name="workflow-publish"),
    path("config/workflows/<int:pk>/export/", views.ExportView.as_view(), name="workflow-export"),
    path("config/workflows/<int:pk>/import/", views.ImportView.as_view(), name="workflow-import"),
    path("work/", views.WorkQueueView.as_view(), name="work-queue"),
    path("workflow/ticket/<int:pk>/panel/", views.TicketPanelView.as_view(), name="workflow-ticket-panel"),
    path("workflow/task/<int:pk>/act/", views.TaskActView.as_view(), name="workflow-task-act"),
]
