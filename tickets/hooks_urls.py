"""URLs of the WeChat callbacks (full paths; scrm/urls.py includes this at the root)."""

from django.urls import path

from . import hooks

urlpatterns = [
    path("hooks/wecom/<slug:tenant_slug>/", hooks.wecom_callback, name="hook-wecom"),
    path("hooks/wechat/<slug:tenant_slug>/", hooks.wechat_callback, name="hook-wechat"),
]
