"""The local S3 server of the tests and benches: moto's S3 app, served with keep-alive.

    python -m testing.s3_server --host 127.0.0.1 --port 9000

moto's own `moto_server` is werkzeug's development server in front of moto's dispatcher:
it closes the connection after every response (so each request pays a TCP connect and a
new server thread), and it finds the service of every request by scanning moto's package
directory (about 180 `stat` calls per PUT). Tigris, the store in production, serves S3
alone and keeps connections alive. So the stand-in is the same moto S3 app (the same
behaviour: conditional PUTs, listings, errors) under gunicorn's threaded worker, which
keeps HTTP/1.1 connections open: production's connection shape, at a third less CPU per
request on the machine the tests share with it.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(host: str, port: int) -> list[str]:
    """The command line that serves moto's S3 app on host:port until SIGTERM."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(ROOT),
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        "8",
        # Idle connections stay open as a client pool expects (botocore reconnects after).
        "--keep-alive",
        "60",
        # A test run's end should not wait on idle keep-alive connections.
        "--graceful-timeout",
        "1",
        "--bind",
        f"{host}:{port}",
        "testing.s3_app:app",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    argv = command(args.host, args.port)
    os.execv(argv[0], argv)  # noqa: S606 - our own argv; the same pid: stopping it stops the server


if __name__ == "__main__":
    main()
