"""Artifacts: canonical, content-addressed, immutable, checked on the way back."""

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from runbooks.artifacts import (
    ArtifactTampered,
    artifact_load,
    artifact_store,
    canonical_bytes,
    sha256_hex,
)
from runbooks.tests.factories import sample_document
from testing.servers import handler_server
from testing.services import s3_create_bucket, s3_storage_settings


def test_canonical_bytes_do_not_depend_on_key_order():
    a = {"b": 1, "a": {"d": 2, "c": [3, "é"]}}
    b = json.loads(json.dumps({"a": {"c": [3, "é"], "d": 2}, "b": 1}))
    assert canonical_bytes(a) == canonical_bytes(b)
    assert canonical_bytes(a) == '{"a":{"c":[3,"é"],"d":2},"b":1}'.encode()


def _round_trip():
    doc = sample_document()
    key, digest = artifact_store(incident_id=7, version=2, data=doc)
    assert key == f"runbooks/7/2-{digest}.json"
    assert digest == sha256_hex(canonical_bytes(doc))
    assert artifact_load(key=key, expected_sha256=digest) == doc
    # Writing the same content again is a no-op, not a second object.
    assert artifact_store(incident_id=7, version=2, data=doc) == (key, digest)
    storage = storages["artifacts"]
    storage.delete(key)
    storage.save(key, ContentFile(canonical_bytes({**doc, "confidence": 0.99})))
    with pytest.raises(ArtifactTampered):
        artifact_load(key=key, expected_sha256=digest)


def _artifacts_on_s3(settings, endpoint: str, bucket: str, *, create: bool = True) -> None:
    """The `artifacts` storage on the S3 server at `endpoint`, in `bucket`."""
    if create:
        s3_create_bucket(endpoint, bucket)
    stores = dict(settings.STORAGES)
    stores["artifacts"] = s3_storage_settings(endpoint, bucket)
    settings.STORAGES = stores


def test_round_trip_on_the_configured_storage():
    _round_trip()


def test_round_trip_on_an_s3_server(s3_server, settings):
    _artifacts_on_s3(settings, s3_server, "artifacts-roundtrip")
    assert type(storages["artifacts"]).__name__ == "S3Storage"
    _round_trip()


def test_on_s3_one_conditional_put_writes_and_never_replaces(s3_server, settings):
    _artifacts_on_s3(settings, s3_server, "artifacts-once")
    storage = storages["artifacts"]
    calls: list[str] = []
    storage.connection.meta.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    doc = sample_document()
    key, digest = artifact_store(incident_id=8, version=1, data=doc)
    assert calls == ["PutObject"]  # no look-up before the write
    # Someone else's bytes under the name stay as they are; loading them is refused.
    storage.delete(key)
    storage.save(key, ContentFile(b'{"other": true}'))
    calls.clear()
    assert artifact_store(incident_id=8, version=1, data=doc) == (key, digest)
    assert calls == ["PutObject"]
    with storage.open(key, "rb") as fh:
        assert fh.read() == b'{"other": true}'
    with pytest.raises(ArtifactTampered):
        artifact_load(key=key, expected_sha256=digest)


def test_an_artifact_goes_with_its_headers_without_waiting_for_a_go_ahead(settings):
    """botocore would send `Expect: 100-continue` and hold the body back for a round trip
    to the store; an artifact's PUT carries its body at once, signed as before."""
    from http.server import BaseHTTPRequestHandler

    seen: list[tuple[dict, bytes]] = []

    class Store(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("ETag", '"etag"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    doc = sample_document()
    with handler_server(Store) as (_, endpoint):
        _artifacts_on_s3(settings, endpoint, "artifacts-at-once", create=False)
        artifact_store(incident_id=9, version=1, data=doc)
    [(headers, body)] = seen
    assert "expect" not in headers
    assert body == canonical_bytes(doc)
    assert headers["if-none-match"] == "*"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256")
    assert "expect" not in headers["authorization"].split("SignedHeaders=")[1].split(",")[0]


def test_the_s3_server_keeps_a_connection_for_the_next_put(s3_server, settings, monkeypatch):
    """Tigris keeps connections alive: so does the stand-in the tests and benches use, or
    every artifact PUT would pay a TCP connect (and the server a thread) that production
    does not."""
    import urllib3.util.connection

    _artifacts_on_s3(settings, s3_server, "artifacts-keepalive")
    client = storages["artifacts"].connection.meta.client
    answers: list[str] = []
    client.meta.events.register(
        "before-parse.s3.PutObject",
        lambda response_dict, **_: answers.append(response_dict["headers"].get("connection", "")),
    )
    artifact_store(incident_id=9, version=1, data=sample_document())  # connects once
    connects: list[tuple] = []
    connect = urllib3.util.connection.create_connection

    def counted(address, *args, **kwargs):
        connects.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    for version in (2, 3):
        artifact_store(incident_id=9, version=version, data={**sample_document(), "v": version})
    assert len(answers) == 3
    assert "close" not in [a.lower() for a in answers]
    assert connects == []
