"""The optional packages the observability tests need (the `otel` and `prometheus` extras, and the
OpenTelemetry SDK): imported here or `required(...)`, so a test skips without them, and fails under CI."""

from __future__ import annotations

import importlib
from types import ModuleType

from .requirements import required

__all__ = ["needs"]


def needs(module: str, extra: str) -> ModuleType:
    """`module` imported, else skip (fail under CI) naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        required(f"`{module}` is not installed: install the `{extra}` extra")
