"""``jira-sync web``: the Flask app under gunicorn (threads, graceful shutdown on SIGTERM)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from config.settings import Settings

GRACEFUL_TIMEOUT_SECONDS = 20


class WebServer(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"{self.settings.web_host}:{self.settings.web_port}",
            "workers": self.settings.web_workers,
            "threads": self.settings.web_threads,
            "worker_class": "gthread",
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "timeout": 60,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "jira-sync-web",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each worker after the fork, so every worker builds its own engine.
        from webhook_app import bootstrap, create_app

        app = create_app(self.settings)
        bootstrap.start(self.settings, app.extensions["jira_sync"]["database"])
        return app
