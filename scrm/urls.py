"""Root URLconf: staff pages of the core app, auth, language switch, admin; apps add theirs."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from . import views
from .forms import LoginForm

urlpatterns = [
    path("", include("dashboards.urls")),  # its 工作台 at "" comes before (and replaces) HomeView
    path("", views.HomeView.as_view(), name="home"),
    # Browsers ask for /favicon.ico before reading the page's <link rel="icon">.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}img/favicon.svg", permanent=True)),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", authentication_form=LoginForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/",
         auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
         name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/",
         auth_views.PasswordResetConfirmView.as_view(template_name="registration/password_reset_confirm.html"),
         name="password_reset_confirm"),
    path("password-reset/done/",
         auth_views.PasswordResetCompleteView.as_view(template_name="registration/password_reset_complete.html"),
         name="password_reset_complete"),
    path("tenant/switch/", views.TenantSwitchView.as_view(), name="tenant-switch"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/new/", views.CustomerCreateView.as_view(), name="customer-create"),
    path("customers/<int:pk>/", views.CustomerDetailView.as_view(), name="customer-detail"),
    path("customers/<int:pk>/edit/", views.CustomerUpdateView.as_view(), name="customer-update"),
    path("opportunities/", views.OpportunityListView.as_view(), name="opportunity-list"),
    path("opportunities/new/", views.OpportunityCreateView.as_view(), name="opportunity-create"),
    path("opportunities/<int:pk>/edit/", views.OpportunityUpdateView.as_view(), name="opportunity-update"),
    path("stores/", views.StoreListView.as_view(), name="store-list"),
    path("stores/new/", views.StoreCreateView.as_view(), name="store-create"),
    path("stores/<int:pk>/", views.StoreDetailView.as_view(), name="store-detail"),
    path("stores/<int:pk>/edit/", views.StoreUpdateView.as_view(), name="store-update"),
    path("regions/", views.RegionListView.as_view(), name="region-list"),
    path("staff/", views.StaffListView.as_view(), name="staff-list"),
    path("staff/new/", views.StaffCreateView.as_view(), name="staff-create"),
    path("staff/<int:pk>/edit/", views.StaffUpdateView.as_view(), name="staff-update"),
    path("staff/<int:pk>/password/", views.StaffPasswordView.as_view(), name="staff-password"),
    path("staff/<int:pk>/active/", views.StaffActiveView.as_view(), name="staff-active"),
    path("", include("tickets.urls")),
    path("", include("tickets.urls_config")),
    path("", include("workflow.urls")),
    path("", include("tickets.api_urls")),
    path("", include("tickets.hooks_urls")),
    path("", include("notifications.urls")),
    path("", include("fieldservice.urls")),
    path("", include("spareparts.urls")),
    path("", include("settlement.urls")),
    path("", include("automation.urls")),
    path("admin/", admin.site.urls),
]
# No /media/ route, not even under DEBUG: uploads are served only by the views that check who
# may see them (tickets.views.AttachmentDownloadView, public_attachment).
