"""Slack's request URLs (the app manifest points here)."""

from django.urls import path

from . import views

app_name = "slack"
urlpatterns = [
    path("commands/", views.slash_command, name="commands"),
    path("interactivity/", views.interactivity, name="interactivity"),
    path("events/", views.events, name="events"),
    path("incidents/<int:pk>/war-room/", views.war_room_open, name="open_room"),
]
