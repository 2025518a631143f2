"""Settlement routes under /settlement/."""

from django.urls import path

from . import views

urlpatterns = [
    path("settlement/", views.HomeView.as_view(), name="settlement-home"),
    path("settlement/runs/", views.RunListView.as_view(), name="settlement-runs"),
    path("settlement/runs/<int:pk>/", views.RunView.as_view(), name="settlement-run"),
    path("settlement/runs/<int:pk>/progress/", views.RunProgressView.as_view(), name="settlement-run-progress"),
    path("settlement/runs/<int:pk>/parties/<int:party_pk>/", views.StatementView.as_view(),
         name="settlement-statement"),
    path("settlement/runs/<int:pk>/export.<str:fmt>", views.RunExportView.as_view(), name="settlement-export"),
    path("settlement/me/", views.MyEarningsView.as_view(), name="settlement-me"),
    path("settlement/ranking/", views.RankingView.as_view(), name="settlement-ranking"),
    path("settlement/rules/", views.RuleListView.as_view(), name="settlement-rules"),
    path("settlement/rules/new/", views.RuleEditView.as_view(), name="settlement-rule-create"),
    path("settlement/rules/<int:pk>/", views.RuleEditView.as_view(), name="settlement-rule"),
    path("settlement/rules/export/", views.RuleExportView.as_view(), name="settlement-rules-export"),
    path("settlement/rules/import/", views.RuleImportView.as_view(), name="settlement-rules-import"),
    path("settlement/prices/", views.PriceBookView.as_view(), name="settlement-prices"),
    path("settlement/prices/export/", views.PriceExportView.as_view(), name="settlement-prices-export"),
    path("settlement/prices/import/", views.PriceImportView.as_view(), name="settlement-prices-import"),
]
