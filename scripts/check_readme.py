#!/usr/bin/env python3
"""Run every shell command the README shows in a code block, as a newcomer would.

Commands are the lines of ```sh blocks and the `$ `-prefixed lines of other
blocks. Each runs verbatim from the repository root, on the embedded default, in
a scratch data directory (DATA_DIR), after `make run` has set things up. A
command that is not safe on a fresh clone is skipped with its reason; a README
command this script does not know how to classify fails the check, so a new
command cannot slip in unchecked. Where the README shows a command's output,
the first line of that output must match.

    python3 scripts/check_readme.py [README.md]
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Prefix -> why it does not run here.
SKIPPED = {
    "fly ": "deploys to Fly.io: needs an account and changes remote state",
    "make test": "the test suite: CI runs it in its own step",
    "make lint": "CI runs it in its own step",
    "make bench": "benchmarks take minutes and measure, they do not check",
    "make services": "starts system services as root: CI's own step",
    "REDIS_URL=": "a long-running Celery worker against a Redis the reader runs",
}
# Commands that serve until stopped: started, probed, stopped.
SERVING = ("make run",)
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "BUCKET_NAME")


def commands(readme: str) -> list[tuple[str, str]]:
    """(command, first output line shown or "") for every command in the code blocks."""
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```", readme, re.S | re.M):
        indent, lang, body = match.group(1), match.group(2), match.group(3)
        lines = [line[len(indent) :] for line in body.splitlines()]
        if lang == "sh":
            joined = "\n".join(lines).replace("\\\n", " ")
            found += [(c.strip(), "") for c in joined.splitlines() if c.strip()]
            continue
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                shown = lines[i + 1] if i + 1 < len(lines) else ""
                found.append((line[2:].strip(), "" if shown.startswith("$ ") else shown))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_stop(command: str, env: dict, ready: str = "Demo data ready.") -> str:
    """Start a serving command on a free port, wait until it printed `ready` and answers
    /healthz, stop it; "" when fine."""
    port = free_port()
    proc = subprocess.Popen(
        [*shlex.split(command), f"ADDR=127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                reader.join(5)
                return f"exited with {proc.returncode}:\n{''.join(printed)[-3000:]}"
            if any(ready in line for line in printed):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        return ""
                except OSError:
                    pass
            time.sleep(0.5)
        return f"did not print {ready!r} and serve /healthz within 600 s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> int:
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "README.md").read_text()
    found = commands(readme)
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="readme-check-")
    # `make run` first: every other command assumes what it set up.
    found.sort(key=lambda item: not item[0].startswith(SERVING))
    failed = 0
    for command, shown in found:
        skip = next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)
        if skip:
            print(f"skip  {command}\n      ({skip})")
            continue
        started = time.monotonic()
        if command.startswith(SERVING):
            problem = serve_and_stop(command, env)
        else:
            # The README shows shell command lines; they run as a reader would paste them.
            shell = {"shell": True, "cwd": ROOT, "env": env, "capture_output": True, "text": True}
            done = subprocess.run(command, **shell)  # noqa: S602
            out = done.stdout.splitlines()
            if done.returncode != 0:
                problem = f"exited with {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
            elif shown and not shown.rstrip().endswith("...") and (out[:1] != [shown]):
                problem = f"first output line {out[:1]!r}, the README shows {shown!r}"
            else:
                problem = ""
        took = f"{time.monotonic() - started:.1f}s"
        if problem:
            failed += 1
            print(f"FAIL  {command} ({took})\n{problem}")
        else:
            print(f"ok    {command} ({took})")
    print(f"\n{len(found)} README commands, {failed} failed")
    return 1 if failed or not found else 0


if __name__ == "__main__":
    sys.exit(main())
