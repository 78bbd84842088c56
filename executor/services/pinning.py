"""The target an action request was planned against, pinned so an approval holds only for it.

The request stores the target's kind, its URL with secrets taken out (what the approver
is shown) and a fingerprint of everything that decides where the action acts. At approval
and at run time the target is resolved again and compared: a target re-pointed since
the plan is never acted on in the approver's name.
"""

import hashlib
import json
from dataclasses import dataclass

from ..targets import ResolvedTarget


@dataclass(frozen=True)
class Pin:
    kind: str
    url: str  # redacted: safe to show
    fingerprint: str

    def fields(self) -> dict[str, str]:
        return {
            "target_kind": self.kind,
            "target_url": self.url[:500],
            "target_fingerprint": self.fingerprint,
        }


NO_PIN = Pin("", "", "")


def target_fingerprint(target: ResolvedTarget) -> str:
    """sha256 over what identifies where a target acts: kind, full URL (secrets included,
    hashed only), the secret's variable name and its options (schemas, app, paths)."""
    material = json.dumps(
        [target.kind, target.url, target.secret_env, target.options],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def pin_of(target: ResolvedTarget | None) -> Pin:
    if target is None:
        return NO_PIN
    return Pin(target.kind, target.display_url, target_fingerprint(target))


def pin_change(request, target: ResolvedTarget | None) -> str:
    """What changed between the pinned target and `target`, or "" when it is the same.

    A request planned before pins existed has none: nothing to compare against.
    """
    if not request.target_fingerprint:
        return ""
    now = pin_of(target)
    if now.fingerprint == request.target_fingerprint:
        return ""
    name = request.target or "the target"
    if target is None:
        return f"{name} can no longer be resolved"
    changes = []
    if now.kind != request.target_kind:
        changes.append(f"kind {request.target_kind} → {now.kind}")
    if now.url != request.target_url:
        changes.append(f"URL {request.target_url or '(none)'} → {now.url or '(none)'}")
    if not changes:
        changes.append("its secret or settings")
    return f"{name} changed since the plan: " + ", ".join(changes)
