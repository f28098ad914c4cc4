"""Production serving with gunicorn: threaded workers, one snapshot for the whole server until it is reloaded.

The arbiter resolves `<data>/current` once, pins that snapshot and hands its path to every worker, so
a worker that replaces one retired at the time limit serves the same data as its siblings. A new
build is switched to explicitly: SIGHUP to the arbiter (`kill -HUP $(cat <data>/serve-<port>.pid)`)
re-resolves `current` and replaces the workers gracefully, old ones finishing what they serve.

Workers are gunicorn's `gthread` kind (reading request heads without holding a thread, under a time limit:
server/http/worker.py), chosen by measurement (bench/bench_endpoint.py: about twice the requests per second of
sync workers at the same CPU per request): clients that keep their connection alive (SPARQL libraries, wrk)
are served without a new TCP connection per request, which sync workers cannot do. With four threads a worker
keeps answering while a thread waits on a runaway query; at its time limit the whole worker retires gracefully
(server/store/timelimit.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from gunicorn.app.base import BaseApplication

from kg.contract import current_snapshot, pin

#: how each worker serves (the endpoint benchmark serves its bare app the same way)
WORKER_OPTIONS: dict[str, Any] = {"worker_class": "server.http.worker.HeadTimeoutWorker", "threads": 4, "keepalive": 5}


class SnapshotServer(BaseApplication):
    """gunicorn with the medcode app; `load_config` runs in the arbiter at start and on every SIGHUP."""

    def __init__(self, data_dir: Path, options: dict[str, Any], settings: dict[str, Any]) -> None:
        self.data_dir, self.options, self.settings = data_dir, options, settings
        self.snapshot: Path | None = None
        self._pin: IO[bytes] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        snapshot = current_snapshot(self.data_dir)
        if snapshot is not None and snapshot != self.snapshot:
            previous, self._pin, self.snapshot = self._pin, pin(snapshot), snapshot
            if previous is not None:
                previous.close()

    def load(self):
        from .app import create_app

        config = {**self.settings, "MEDCODE_DATA": str(self.data_dir)}
        if self.snapshot is not None:
            config["MEDCODE_SNAPSHOT"] = str(self.snapshot)
        return create_app(config)


def pid_file(data_dir: Path, port: int) -> Path:
    """Where the arbiter writes its pid (for `kill -HUP`)."""
    return data_dir / f"serve-{port}.pid"


def run_gunicorn(data_dir: Path, host: str, port: int, workers: int, *, access_log: bool = False,
                 reload: bool = False, settings: dict[str, Any] | None = None) -> None:
    """Serve until stopped (SIGTERM/SIGINT); SIGHUP switches to the data directory's current snapshot."""
    options: dict[str, Any] = {**WORKER_OPTIONS, "bind": f"{host}:{port}", "workers": workers,
                               "timeout": 60, "graceful_timeout": 10,
                               "pidfile": str(pid_file(data_dir, port)), "reload": reload,
                               "control_socket_disable": True}  # gunicorn 24+ would listen under ~/.gunicorn
    if access_log:
        options["accesslog"] = "-"
    SnapshotServer(data_dir, options, settings or {}).run()
