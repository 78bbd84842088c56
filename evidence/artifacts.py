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


def snapshot_store(*, prefix: str, data: Any) -> tuple[str, str]:
    """Write `data` once under `<prefix>/<sha256>.json`; return (key, sha256)."""
    body = canonical_bytes(data)
    digest = hashlib.sha256(body).hexdigest()
    key = f"{prefix}/{digest}.json"
    storage = storages["artifacts"]
    # The storage's own check that the name is free is the only look-up: a key that
    # exists names these bytes already, and the copy made under another name goes.
    saved = storage.save(key, ContentFile(body))
    if saved != key:
        storage.delete(saved)
        if not storage.exists(key):
            raise RuntimeError(f"snapshot stored as {saved!r}, expected {key!r}")
    return key, digest


def snapshot_load(*, key: str, expected_sha256: str) -> Any:
    with storages["artifacts"].open(key, "rb") as fh:
        body = fh.read()
    digest = hashlib.sha256(body).hexdigest()
    if digest != expected_sha256:
        raise SnapshotTampered(f"snapshot {key} has sha256 {digest[:12]}…, not the recorded one")
    return jsonsafe.loads(body)
