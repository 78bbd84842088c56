"""Webhook routes for alert sources: POST /hooks/<source-slug>/."""

from django.urls import path

from . import views_hooks

app_name = "hooks"
urlpatterns = [
    path("<slug:slug>/", views_hooks.alert_hook, name="alert"),
]
