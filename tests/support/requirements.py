"""What the real-client tests need from the machine, in one place: a tool on PATH, and tests/node's pinned
Node packages installed. Without them a test skips, except under CI (`CI` set), where it fails: a skip must
never pass CI silently."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["NODE_DIR", "ci", "node_packages", "npm_ci_needed", "required", "tool"]

#: The pinned Node packages (openai-node, the Vercel AI SDK, Claude Code, Codex) and their lockfile.
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def required(message: str) -> NoReturn:
    """Skip the test for want of `message`'s tool, or fail it under CI."""
    if ci():
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def tool(name: str, why: str) -> str:
    """`name`'s path on PATH, else `required(...)`."""
    path = shutil.which(name)
    if path is None:
        required(f"`{name}` is not on PATH: {why}")
    return path


def npm_ci_needed() -> bool:
    """Whether tests/node's node_modules is missing or older than its lockfile."""
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    lockfile = NODE_DIR / "package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < lockfile.stat().st_mtime


def node_packages(why: str) -> str:
    """The `node` executable, with tests/node's pinned packages installed (`npm ci` when needed)."""
    node = tool("node", why)
    npm = tool("npm", why)
    if npm_ci_needed():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return node
