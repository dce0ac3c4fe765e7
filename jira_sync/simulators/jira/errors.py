"""Jira's error answer: ``{"errorMessages": [...], "errors": {field: message}}``."""

from __future__ import annotations


class JiraError(Exception):
    def __init__(self, status: int, messages: list[str] | None = None,
                 errors: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {messages or ''} {errors or ''}")
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}

    def body(self) -> dict:
        return {"errorMessages": self.messages, "errors": self.errors}


def bad_request(errors: dict[str, str] | None = None, *messages: str) -> JiraError:
    return JiraError(400, list(messages), errors)


def issue_not_found() -> JiraError:
    return JiraError(404, ["Issue does not exist or you do not have permission to see it."])
