"""Helpers for running incman for real in tests and demos: processes, ports, simulators."""
