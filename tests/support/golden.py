"""The one golden-fixture loader: `tests/fixtures/<provider>/<kind>/*.json`, one test case per file.

An empty or missing folder fails at collection (here, and through `empty_parameter_set_mark =
"fail_at_collect"` in pyproject.toml), so a renamed folder can never turn its tests into a silent skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

__all__ = ["FIXTURES", "fixture", "golden"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def golden(provider: str, kind: str) -> list[Any]:
    """Every fixture of one kind (`request`, `response`, `stream`, …) for one provider, parsed, with the
    file's stem as the test id."""
    paths = sorted((FIXTURES / provider / kind).glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no golden fixtures in tests/fixtures/{provider}/{kind}/")
    return [pytest.param(json.loads(path.read_text()), id=path.stem) for path in paths]


def fixture(provider: str, kind: str, name: str) -> Any:
    """One fixture by name, parsed."""
    return json.loads((FIXTURES / provider / kind / f"{name}.json").read_text())
