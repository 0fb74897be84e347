"""Carrying out one outbox action against a remote system."""
