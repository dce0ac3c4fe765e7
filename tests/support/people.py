"""People at work on both simulators, as the two-way harness and the process stack play
them: QALITA users through the QALITA simulator's ``/_sim/`` API, Jira users through Jira's
REST API with their own accounts (so each change is theirs, not the service account's)."""

from __future__ import annotations

from typing import Any

import requests

# The Jira simulator's people and their API tokens.
PEOPLE = {"ana@example.com": "tok-ana", "bo@example.com": "tok-bo"}


class People:
    """Needs ``jira`` and ``qalita``: the running simulators."""

    jira: Any
    qalita: Any

    def configure_jira(self, **settings: Any) -> None:
        requests.post(f"{self.jira.base_url}/_sim/config", json=settings,
                      timeout=10).raise_for_status()

    def qalita_new(self, **fields: Any) -> dict[str, Any]:
        response = requests.post(f"{self.qalita.base_url}/_sim/issues", json={
            "title": "Orders table is stale", "dataset": "orders", "rule": "freshness",
            "severity": "high", "domain": "billing", **fields}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["event"]["issue"]

    def qalita_change(self, issue_id: int, **changes: Any) -> None:
        """A QALITA user changes an issue (QALITA publishes its event)."""
        response = requests.patch(f"{self.qalita.base_url}/_sim/issues/{issue_id}",
                                  json=changes, timeout=10)
        assert response.status_code == 200, response.text

    def qalita_issue(self, issue_id: int) -> dict[str, Any]:
        return requests.get(f"{self.qalita.base_url}/_sim/issues/{issue_id}", timeout=10).json()

    def as_person(self, method: str, path: str, body: Any = None,
                  person: str = "ana@example.com") -> requests.Response:
        """A person's REST call (their own account, so the change is theirs)."""
        api = f"/rest/api/{self.jira.config.api_version}"
        response = requests.request(method, f"{self.jira.base_url}{api}{path}", json=body,
                                    auth=(person, PEOPLE[person]), timeout=10)
        assert response.status_code < 300, response.text
        return response

    def transition(self, issue_id: str, name: str, person: str = "ana@example.com") -> None:
        """A person moves the issue by one transition, by its name."""
        listing = self.as_person("GET", f"/issue/{issue_id}/transitions", person=person).json()
        chosen = next(t for t in listing["transitions"] if t["name"] == name)
        self.as_person("POST", f"/issue/{issue_id}/transitions",
                       {"transition": {"id": chosen["id"]}}, person=person)
