"""moto's S3 app alone, as the WSGI application `testing.s3_server` serves."""

from moto.server import create_backend_app

app = create_backend_app("s3")
