"""The local servers the tests' fakes run on."""

from http.server import BaseHTTPRequestHandler

from testing.servers import serve


def _report(httpd, exc: Exception) -> None:
    try:
        raise exc
    except Exception:
        httpd.handle_error(None, ("127.0.0.1", 1))


def test_a_client_that_hung_up_is_not_reported_but_other_failures_are(capsys):
    httpd, thread = serve(BaseHTTPRequestHandler)
    try:
        # A check that gave up at its deadline closed the connection before the answer.
        _report(httpd, BrokenPipeError("the client went away"))
        _report(httpd, ConnectionResetError("reset by peer"))
        _report(httpd, ValueError("a broken fake"))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    err = capsys.readouterr().err
    assert "went away" not in err and "reset by peer" not in err
    assert "ValueError: a broken fake" in err
