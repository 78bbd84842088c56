"""The public status page's routes (no login)."""

from django.urls import path

from . import status_page

app_name = "status"
urlpatterns = [
    path("", status_page.status_page, name="page"),
    path("feed.atom", status_page.status_feed, name="feed"),
]
