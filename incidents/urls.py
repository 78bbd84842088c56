"""The ops web UI's routes."""

app_name = "incidents"
urlpatterns: list = []
