"""URL routes. Each app registers its API viewsets through ``<app>.api.register(router)``."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from execution import api as execution_api
from marketdata import api as marketdata_api
from strategies import api as strategies_api
from trading import api as trading_api
from trading.web.views.health import health

router = DefaultRouter()
for module in (marketdata_api, strategies_api, execution_api, trading_api):
    module.register(router)

urlpatterns = [
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include(router.urls)),
    path("", include("trading.web.urls")),
]
