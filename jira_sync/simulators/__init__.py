"""Stand-ins for the systems jira-sync talks to (Jira, QALITA), for tests, the demo and benchmarks.

They are independent implementations: they never import the service's own clients or renderers,
so a bug shared by both sides cannot hide itself.
"""
