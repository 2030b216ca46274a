"""Reliability and security tests: faults, contention, hostile input, secrets (issue #10)."""

import os


def full_run() -> bool:
    """Whether the long versions run (RELIABILITY_FULL=1, as `make soak` sets)."""
    return os.environ.get("RELIABILITY_FULL", "") not in ("", "0")
