"""Immutable, content-addressed storage of runbook artifacts.

The bytes are canonical JSON (sorted keys, no whitespace) so the sha256 names
the content. The storage alias `artifacts` is the local filesystem by default
and Tigris/S3 when BUCKET_NAME is set.
"""

import hashlib
from typing import Any

from django.core.files.storage import storages

from evidence.artifacts import store_once
from incidents import jsonsafe


class ArtifactTampered(Exception):
    """The stored bytes are not the ones the database recorded."""


class ArtifactMissing(Exception):
    pass


def canonical_bytes(data: Any) -> bytes:
    """The canonical JSON of `data`; ValueError for NaN or Infinity, which are not JSON."""
    return jsonsafe.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_key(*, incident_id: int, version: int, sha256: str) -> str:
    return f"runbooks/{incident_id}/{version}-{sha256}.json"


def artifact_store(*, incident_id: int, version: int, data: Any) -> tuple[str, str]:
    """Write `data` once; return (key, sha256). Writing the same content again is a no-op."""
    body = canonical_bytes(data)
    digest = sha256_hex(body)
    key = artifact_key(incident_id=incident_id, version=version, sha256=digest)
    store_once(key, body)
    return key, digest


def artifact_load(*, key: str, expected_sha256: str) -> Any:
    """Read an artifact back and refuse it unless its sha256 is the recorded one."""
    storage = storages["artifacts"]
    try:
        with storage.open(key, "rb") as fh:
            body = fh.read()
    except (FileNotFoundError, OSError) as exc:
        raise ArtifactMissing(f"artifact {key} cannot be read: {exc}") from exc
    except Exception as exc:  # boto's ClientError and friends
        raise ArtifactMissing(f"artifact {key} cannot be read: {exc}") from exc
    digest = sha256_hex(body)
    if digest != expected_sha256:
        raise ArtifactTampered(
            f"artifact {key} has sha256 {digest[:12]}…, the database recorded "
            f"{expected_sha256[:12]}…; refusing to run it"
        )
    try:
        return jsonsafe.loads(body)
    except (ValueError, RecursionError) as exc:
        # Our own writer never produces these bytes (canonical_bytes refuses NaN).
        raise ArtifactTampered(
            f"artifact {key} is not valid JSON ({type(exc).__name__}: {str(exc)[:100]}); "
            "refusing to run it"
        ) from exc
