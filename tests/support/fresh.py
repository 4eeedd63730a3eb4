"""Run code in a new interpreter: what a test of imports needs, since this one has imported everything."""

from __future__ import annotations

import subprocess
import sys


def printed_by_fresh_python(code: str) -> list[str]:
    """The lines `code` prints when run by a new Python process (it must exit 0)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()
