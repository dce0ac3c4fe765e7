"""Helpers for tests that run the service's real processes."""
