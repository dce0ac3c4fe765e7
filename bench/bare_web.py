"""The baseline endpoint: a bare Flask view that only parses the JSON body, served by the same
gunicorn settings as ``jira-sync web`` (``WebServer``'s configuration, only the app differs).
What is left between it and the real receiver is what receiving costs: verifying, storing
and enqueueing."""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask, request

from config.settings import load
from webhook_app.server import WebServer

bare = Flask("bench_bare")


@bare.post("/api/v2/integrations/jira/webhook")
def receive() -> tuple[dict[str, bool], int]:
    request.get_json(force=True)
    return {"accepted": True}, 202


class BareServer(WebServer):
    def load(self) -> Any:
        return bare


if __name__ == "__main__":
    BareServer(load()).run()
    sys.exit(0)
