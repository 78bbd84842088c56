"""The ops web UI's routes."""

from django.urls import path

from . import status_page, views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="list"),
    path("declare/", views.incident_declare_view, name="declare"),
    path("safe-mode/", views.safe_mode_view, name="safe_mode"),
    path("incidents/<int:pk>/", views.incident_detail, name="detail"),
    path("incidents/<int:pk>/live/", views.incident_live, name="live"),
    path("incidents/<int:pk>/acknowledge/", views.incident_acknowledge_view, name="acknowledge"),
    path("incidents/<int:pk>/severity/", views.incident_severity_view, name="severity"),
    path("incidents/<int:pk>/status/", views.incident_transition_view, name="transition"),
    path("incidents/<int:pk>/notes/", views.incident_note_view, name="note"),
    path("incidents/<int:pk>/roles/", views.incident_roles_view, name="roles"),
    path("incidents/<int:pk>/updates/", views.status_update_view, name="status_update"),
    path("incidents/<int:pk>/updates/draft/", views.status_update_draft_view, name="draft"),
    path(
        "incidents/<int:pk>/updates/<int:update_pk>/edit/",
        status_page.status_update_edit_view,
        name="status_update_edit",
    ),
    path(
        "incidents/<int:pk>/updates/<int:update_pk>/publish/",
        status_page.status_update_publish_view,
        name="status_update_publish",
    ),
    path(
        "incidents/<int:pk>/runbook/regenerate/", views.runbook_regenerate_view, name="regenerate"
    ),
    path(
        "incidents/<int:pk>/actions/<int:action_pk>/run/", views.action_run_view, name="action_run"
    ),
    path(
        "incidents/<int:pk>/actions/<int:action_pk>/reask/",
        views.action_reask_view,
        name="action_reask",
    ),
]
