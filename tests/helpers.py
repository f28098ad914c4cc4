"""Small helpers shared by the tests that start real server processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (tests only ever listen on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def medcode_command() -> str:
    """The `medcode` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "medcode"
    return str(script) if script.exists() else (shutil.which("medcode") or "medcode")


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}/sparql"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_server(data_dir: Path, log: Path, env: dict[str, str] | None = None, workers: int = 2) -> Server:
    """`medcode serve` (gunicorn) in its own session (process group); returns once /sparql answers."""
    port = free_port()
    env = dict(os.environ, **(env or {}))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [medcode_command(), "serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    srv = Server(process, port, log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            stop_server(srv)
            pytest.fail(f"medcode serve exited with {process.returncode}:\n{srv.log_tail()}")
        try:
            if requests.get(srv.url, headers={"Accept": "text/turtle"}, timeout=2).status_code == 200:
                return srv
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_server(srv)
            pytest.fail(f"medcode serve did not answer on {srv.url} within 60 s:\n{srv.log_tail()}")
        time.sleep(0.25)


def stop_server(srv: Server) -> None:
    process = srv.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # workers and query workers that outlived the master
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(timeout=5)


def children_by_parent() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                tree.setdefault(stat[0], []).append(int(entry))
    return tree


def proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, utime+stime in ticks, state) of a live process, else None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), fields[0]


def descendants(pid: int) -> list[int]:
    tree = children_by_parent()
    out, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def workers_of(pid: int, count: int, wait: float = 15.0) -> list[int]:
    """The arbiter's worker processes once `count` of them are up (the server answers as soon as the first
    one is, the others may still be booting); fewer after `wait` seconds."""
    deadline = time.monotonic() + wait
    while len(found := descendants(pid)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def cpu_busy(pids: list[int], window: float = 1.0) -> dict[int, float]:
    """CPU seconds each live pid used during `window` seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    before = {pid: s[1] for pid in pids if (s := proc_stat(pid))}
    time.sleep(window)
    after = {pid: s[1] for pid in before if (s := proc_stat(pid))}
    return {pid: (after[pid] - before[pid]) / tick for pid in after}
