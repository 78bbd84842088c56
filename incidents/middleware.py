"""A lean path for webhook deliveries through the middleware stack.

Alert senders are machines: a delivery to /hooks/<source>/ carries no cookie and no
browser, so the session, CSRF-cookie, authentication, messages and frame-options
middlewares would only spend time on it. Placed just below SecurityMiddleware (which
still redirects plain HTTP and adds its headers), this one hands a request the URLconf
routes to the webhook view straight to that view. Every other request, including any
other path under the prefix, takes the full stack unchanged. The view itself keeps the
sender's authentication, the body limit and every refusal.
"""

from collections.abc import Callable
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_script_prefix, resolve, reverse

from .views_hooks import alert_hook


@cache
def _hooks_prefix() -> str:
    """The path prefix of the webhook route, read from the URLconf (its one home)."""
    probe = "probe"
    url = reverse("hooks:alert", kwargs={"slug": probe})
    path = "/" + url.removeprefix(get_script_prefix())
    return path[: path.rindex(probe)]


class WebhookShortcut:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(_hooks_prefix()):
            try:
                match = resolve(path)
            except Resolver404:
                match = None
            if match is not None and match.func is alert_hook:
                request.resolver_match = match
                response = alert_hook(request, *match.args, **match.kwargs)
                # What CommonMiddleware would add: without it the server falls back to
                # a chunked body.
                response.headers["Content-Length"] = str(len(response.content))
                return response
        return self.get_response(request)
