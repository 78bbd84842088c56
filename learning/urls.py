"""The learning pages: postmortems, follow-ups, exports, metrics, the weekly report, handoffs."""

from django.urls import path

from . import views

app_name = "learning"
urlpatterns = [
    path("incidents/<int:pk>/postmortem/", views.postmortem_view, name="postmortem"),
    path("incidents/<int:pk>/postmortem/draft/", views.postmortem_draft_view, name="draft"),
    path("incidents/<int:pk>/postmortem/status/", views.postmortem_status_view, name="status"),
    path("incidents/<int:pk>/follow-ups/", views.follow_up_create_view, name="follow_up_add"),
    path(
        "follow-ups/<int:follow_up_pk>/status/",
        views.follow_up_status_view,
        name="follow_up_status",
    ),
    path("follow-ups/mine/", views.my_follow_ups_view, name="my_follow_ups"),
    path(
        "incidents/<int:pk>/timeline.<str:fmt>", views.timeline_export_view, name="timeline_export"
    ),
    path("metrics/", views.metrics_view, name="metrics"),
    path("reports/weekly/", views.weekly_report_view, name="weekly_report"),
    path("handoff/", views.handoff_view, name="handoff"),
]
