"""Production serving with gunicorn (sync workers; each owns its query worker processes)."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, data_dir: str, options: dict) -> None:
        self.data_dir = data_dir
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app

        return create_app({"MEDCODE_DATA": self.data_dir})


def run_gunicorn(data_dir: str, host: str, port: int, workers: int) -> None:
    _Gunicorn(data_dir, {
        "bind": f"{host}:{port}", "workers": workers, "worker_class": "sync",
        "timeout": 60, "graceful_timeout": 10, "accesslog": "-", "keepalive": 5,
    }).run()
