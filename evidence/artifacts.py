"""Immutable, content-addressed JSON artifacts: canonical bytes named by their sha256.

The same mechanism as the runbook artifacts (`runbooks/artifacts.py`), on the same
`artifacts` storage, for anything below the runbooks layer that needs a snapshot.
"""

import hashlib
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from incidents import jsonsafe


class SnapshotTampered(Exception):
    """The stored bytes are not the ones the database recorded."""


def canonical_bytes(data: Any) -> bytes:
    return jsonsafe.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def store_once(key: str, body: bytes) -> None:
    """Write `body` under `key` unless it is there: the key names the content (its
    sha256), so a key that exists holds these bytes already.

    On S3 one conditional PUT (If-None-Match: *) both writes and refuses to replace;
    elsewhere the storage's own check that the name is free is the only look-up, and
    the copy it made under another name goes."""
    storage = storages["artifacts"]
    if _put_if_absent(storage, key, body):
        return
    saved = storage.save(key, ContentFile(body))
    if saved != key:
        storage.delete(saved)
        if not storage.exists(key):  # a storage that renames for another reason
            raise RuntimeError(f"artifact stored as {saved!r}, expected {key!r}")


def storage_warm() -> None:
    """Build this thread's client of the artifact storage now. On S3 each thread has its
    own (django-storages keeps them per thread), and building one (a boto3 session that
    loads the service's model) costs tens of milliseconds: a worker pays it at start,
    not inside an incident's first runbook."""
    storage = storages["artifacts"]
    if getattr(storage, "bucket_name", None):
        storage.connection.meta.client  # noqa: B018 - built on first access


def _put_if_absent(storage: Any, key: str, body: bytes) -> bool:
    """One conditional PUT on an S3 storage; False when this storage cannot do it."""
    bucket_name = getattr(storage, "bucket_name", None)
    if not bucket_name or getattr(storage, "location", ""):
        return False
    from botocore.exceptions import ClientError

    client = storage.connection.meta.client
    # Once per client (a registration with the same id is ignored).
    client.meta.events.register(
        "before-send.s3.PutObject", _body_at_once, unique_id="artifacts-body-at-once"
    )
    try:
        client.put_object(
            Bucket=bucket_name,
            Key=key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}:
            return True  # there already (or being written): the same bytes, by its name
        if status == 501 or code == "NotImplemented":
            return False  # a store without conditional writes: the look-up path
        raise
    return True


def _body_at_once(request: Any, **_: Any) -> None:
    """botocore asks for `Expect: 100-continue` on every PUT with a body, so the body waits
    a round trip to the store for its go-ahead. An artifact is a few kilobytes: it goes
    with the headers. (The header is not signed, so the signature stands.)"""
    request.headers.pop("Expect", None)


def snapshot_store(*, prefix: str, data: Any) -> tuple[str, str]:
    """Write `data` once under `<prefix>/<sha256>.json`; return (key, sha256)."""
    body = canonical_bytes(data)
    digest = hashlib.sha256(body).hexdigest()
    key = f"{prefix}/{digest}.json"
    store_once(key, body)
    return key, digest


def snapshot_load(*, key: str, expected_sha256: str) -> Any:
    with storages["artifacts"].open(key, "rb") as fh:
        body = fh.read()
    digest = hashlib.sha256(body).hexdigest()
    if digest != expected_sha256:
        raise SnapshotTampered(f"snapshot {key} has sha256 {digest[:12]}…, not the recorded one")
    return jsonsafe.loads(body)
