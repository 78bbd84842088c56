"""Real service binaries started by tests: a handle to stop them and read their logs."""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def answers(proc: Proc, path: str) -> bool:
    if proc.proc.poll() is not None:
        raise RuntimeError(f"exited with {proc.proc.returncode}:\n{proc.log_tail()}")
    try:
        return httpx.get(proc.url + path, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
