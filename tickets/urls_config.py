"""URLs of the configuration pages (include at the site root): ticket templates and their
builder, classification rules and the rule tester, API keys."""

from django.urls import path

from . import views_config as views

urlpatterns = [
    path("config/templates/", views.TemplateListView.as_view(), name="template-list"),
    path("config/templates/new/", views.TemplateCreateView.as_view(), name="template-create"),
    path("config/templates/preset/", views.TemplatePresetView.as_view(), name="template-preset"),
    path("config/templates/import/", views.TemplateImportView.as_view(), name="template-import"),
    path("config/templates/<int:pk>/", views.BuilderView.as_view(), name="template-builder"),
    path("config/templates/<int:pk>/settings/", views.TemplateSettingsView.as_view(), name="template-settings"),
    path("config/templates/<int:pk>/fields/", views.FieldFormView.as_view(), name="template-field-form"),
    path("config/templates/<int:pk>/fields/delete/", views.FieldDeleteView.as_view(), name="template-field-delete"),
    path("config/templates/<int:pk>/fields/reorder/", views.FieldsReorderView.as_view(),
         name="template-fields-reorder"),
    path("config/templates/<int:pk>/preview/", views.PreviewView.as_view(), name="template-preview"),
    path("config/templates/<int:pk>/publish/", views.PublishView.as_view(), name="template-publish"),
    path("config/templates/<int:pk>/export/", views.ExportView.as_view(), name="template-export"),
    path("config/templates/<int:pk>/import/", views.ImportIntoView.as_view(), name="template-import-into"),
    path("config/rules/", views.RuleListView.as_view(), name="rule-list"),
    path("config/rules/new/", views.RuleCreateView.as_view(), name="rule-create"),
    path("config/rules/test/", views.RuleTestView.as_view(), name="rule-test"),
    path("config/rules/<int:pk>/", views.RuleUpdateView.as_view(), name="rule-update"),
    path("config/api-keys/", views.ApiKeyListView.as_view(), name="apikey-list"),
    path("config/api-keys/<int:pk>/revoke/", views.ApiKeyRevokeView.as_view(), name="apikey-revoke"),
]
