"""Production serving with gunicorn (sync workers; queries run in-process under a watchdog)."""

from __future__ import annotations

import threading

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
        from .app import create_app

        app = create_app({"MEDCODE_DATA": self.data_dir})
        threading.Thread(target=_warm_search_index, args=(app,), daemon=True, name="medcode-search-warmup").start()
        return app


def _warm_search_index(app) -> None:
    """Build the worker's search index in the background, so the first search does not pay for it."""
    from .search import get_index

    with app.app_context():
        get_index()


def run_gunicorn(data_dir: str, host: str, port: int, workers: int, access_log: bool = False) -> None:
    options = {"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync",
               "timeout": 60, "graceful_timeout": 10, "keepalive": 5}
    if access_log:
        options["accesslog"] = "-"
    _Gunicorn(data_dir, options).run()
