"""A local server that answers like the Slack Web API, for the war room and /inc.

It implements the methods the coordination app calls, with Slack's request shapes
(form-encoded or JSON bodies, GET query strings, a Bearer token) and its documented
answers: HTTP 200 with `{"ok": false, "error": ...}` for `invalid_auth`, `name_taken`,
`users_not_found`, `user_not_found`, `channel_not_found`, `not_in_channel`,
`already_in_channel`, `already_pinned`, `message_not_found`; HTTP 429 `ratelimited`
with Retry-After. Tests script failures per method and read what it received.
"""

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from testing.servers import handler_server

TOKEN = "xoxb-war-room-token"
BOT_USER = "UBOT00001"
# Slack's rule for channel names: lowercase letters, digits, - and _, at most 80.
NAME_RE = re.compile(r"^[a-z0-9_\-]{1,80}$")


@dataclass
class FakeSlackWeb:
    base: str
    users: dict[str, str] = field(default_factory=dict)  # email -> user id
    channels: dict[str, dict] = field(default_factory=dict)  # id -> name, topic, members, pins
    messages: list[dict] = field(default_factory=list)  # postMessage, in arrival order
    updates: list[dict] = field(default_factory=list)  # chat.update calls
    calls: list[tuple[str, dict]] = field(default_factory=list)
    # method -> answers to give before behaving: ("error", word), ("rate", seconds), (500,)
    script: dict[str, list[tuple]] = field(default_factory=dict)
    down: bool = False  # every call answers HTTP 500
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def add_user(self, email: str) -> str:
        uid = f"U{len(self.users) + 1:08d}"
        self.users[email.lower()] = uid
        return uid

    def user_email(self, uid: str) -> str | None:
        return next((e for e, u in self.users.items() if u == uid), None)

    def take_channel_name(self, name: str) -> str:
        return self._new_channel(name)

    def _new_channel(self, name: str) -> str:
        self._seq += 1
        cid = f"C{self._seq:08d}"
        self.channels[cid] = {"name": name, "topic": "", "members": {BOT_USER}, "pins": []}
        return cid

    def _ts(self) -> str:
        self._seq += 1
        return f"1700000000.{self._seq:06d}"

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def thread(self, channel: str, ts: str) -> list[dict]:
        return [m for m in self.messages if m["channel"] == channel and m.get("thread_ts") == ts]

    # --- the methods ------------------------------------------------------------

    def call(self, method: str, args: dict) -> dict:
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(args)

    def _channel(self, args: dict) -> dict | None:
        return self.channels.get(str(args.get("channel", "")))

    def m_conversations_create(self, a: dict) -> dict:
        name = str(a.get("name", ""))
        if not name:
            return {"ok": False, "error": "invalid_name_required"}
        if not NAME_RE.match(name):
            return {"ok": False, "error": "invalid_name_specials"}
        if any(c["name"] == name for c in self.channels.values()):
            return {"ok": False, "error": "name_taken"}
        cid = self._new_channel(name)
        return {"ok": True, "channel": {"id": cid, "name": name, "is_channel": True}}

    def m_conversations_setTopic(self, a: dict) -> dict:
        ch = self._channel(a)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        if BOT_USER not in ch["members"]:
            return {"ok": False, "error": "not_in_channel"}
        ch["topic"] = str(a.get("topic", ""))[:250]
        return {"ok": True, "channel": {"id": a["channel"], "topic": {"value": ch["topic"]}}}

    def m_conversations_invite(self, a: dict) -> dict:
        ch = self._channel(a)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        users = [u for u in str(a.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "no_user"}
        if any(u not in self.users.values() for u in users):
            return {"ok": False, "error": "user_not_found"}
        if all(u in ch["members"] for u in users):
            return {"ok": False, "error": "already_in_channel"}
        ch["members"].update(users)
        return {"ok": True, "channel": {"id": a["channel"]}}

    def m_users_lookupByEmail(self, a: dict) -> dict:
        uid = self.users.get(str(a.get("email", "")).lower())
        if uid is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": uid, "profile": {"email": a["email"]}}}

    def m_users_info(self, a: dict) -> dict:
        email = self.user_email(str(a.get("user", "")))
        if email is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": a["user"], "profile": {"email": email}}}

    def m_chat_postMessage(self, a: dict) -> dict:
        ch = self._channel(a)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        if BOT_USER not in ch["members"]:
            return {"ok": False, "error": "not_in_channel"}
        if not a.get("text") and not a.get("blocks") and not a.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = self._ts()
        self.messages.append(
            {
                "channel": a["channel"],
                "ts": ts,
                "thread_ts": a.get("thread_ts"),
                "text": a.get("text", ""),
                "blocks": a.get("blocks"),
                "attachments": a.get("attachments"),
            }
        )
        return {"ok": True, "channel": a["channel"], "ts": ts}

    def m_chat_update(self, a: dict) -> dict:
        if self._channel(a) is None:
            return {"ok": False, "error": "channel_not_found"}
        msg = next(
            (m for m in self.messages if m["channel"] == a["channel"] and m["ts"] == a.get("ts")),
            None,
        )
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msg.update(
            text=a.get("text", msg["text"]),
            blocks=a.get("blocks", msg["blocks"]),
            attachments=a.get("attachments", msg["attachments"]),
        )
        self.updates.append(
            {"channel": a["channel"], "ts": a["ts"], "attachments": a.get("attachments")}
        )
        return {"ok": True, "channel": a["channel"], "ts": a["ts"]}

    def m_pins_add(self, a: dict) -> dict:
        ch = self._channel(a)
        if ch is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = a.get("timestamp")
        if not ts:
            return {"ok": False, "error": "no_item_specified"}
        if ts in ch["pins"]:
            return {"ok": False, "error": "already_pinned"}
        ch["pins"].append(ts)
        return {"ok": True}


def _coerce(value: object) -> object:
    # Slack's SDK sends blocks as a JSON string in form bodies; decode them for the tests.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class SlackWebHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, raw: bytes) -> None:
        fake: FakeSlackWeb = self.server.fake  # type: ignore[attr-defined]
        url = urlparse(self.path)
        if not url.path.startswith("/api/"):
            return self._reply(404, {"ok": False, "error": "unknown_method"})
        method = url.path[len("/api/") :]
        args: dict = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctype = self.headers.get("Content-Type", "")
        if raw and ctype.startswith("application/json"):
            try:
                body = json.loads(raw)
            except ValueError:
                return self._reply(200, {"ok": False, "error": "invalid_json"})
            if not isinstance(body, dict):
                return self._reply(200, {"ok": False, "error": "invalid_json"})
            args.update(body)
        elif raw:
            args.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        args = {k: _coerce(v) for k, v in args.items()}
        with fake.lock:
            fake.calls.append((method, args))
            if fake.down:
                return self._reply(500, {"ok": False, "error": "fatal_error"})
            queued = fake.script.get(method) or []
            step = queued.pop(0) if queued else None
            if step is not None:
                if step[0] == "rate":
                    return self._reply(
                        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(step[1])}
                    )
                if step[0] == 500:
                    return self._reply(500, {"ok": False, "error": "fatal_error"})
                return self._reply(200, {"ok": False, "error": step[1]})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._reply(200, {"ok": False, "error": "invalid_auth"})
            return self._reply(200, fake.call(method, args))

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length", "0"))))


@contextmanager
def slack_web_server() -> Iterator[FakeSlackWeb]:
    """The fake Slack Web API on a free loopback port; its API URL is `fake.api_url`."""
    with handler_server(SlackWebHandler) as (httpd, base):
        httpd.fake = fake = FakeSlackWeb(base=base)
        yield fake
