"""Starting and stopping the processes of a local hub and its simulators (demo and tests)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LISTENING = re.compile(r"listening on (?P<url>http://\S+)")
STOP_GRACE_S = 10.0


@dataclass
class ChildProcess:
    """One child process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; return the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.alive():
            self.process.kill()
        self.process.wait()


def start_hub_process(
    name: str, arguments: list[str], env: dict[str, str], log_dir: Path
) -> ChildProcess:
    """Run ``hub <arguments>`` with ``env``, its output in ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", *arguments],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ChildProcess(name, process, log_path)


def start_simulator(
    module: str, *arguments: str, timeout_s: float = 30.0
) -> tuple[ChildProcess, str]:
    """Run ``python -m <module> --port 0``; return it and the URL it printed once listening."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    child = ChildProcess(module, process)
    url = _read_listening_url(process.stdout, timeout_s)
    if url is None:
        child.stop()
        raise RuntimeError(f"simulator {module} did not start within {timeout_s} s")
    return child, url


def _read_listening_url(stream: IO[bytes] | None, timeout_s: float) -> str | None:
    if stream is None:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline().decode(errors="replace")
        if not line:
            return None
        match = LISTENING.search(line)
        if match:
            return match.group("url")
    return None


def stop_all(children: list[ChildProcess]) -> None:
    """Stop every child, the last started first."""
    for child in reversed(children):
        with contextlib.suppress(OSError):
            child.stop()
