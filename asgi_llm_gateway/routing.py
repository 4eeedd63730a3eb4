"""Model resolution: which provider serves a `model` string, and in what order targets are tried."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import GatewayError
from .providers.base import Provider

__all__ = ["Router", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream model on one provider."""

    provider_name: str
    provider: Provider
    model: str

    @property
    def name(self) -> str:
        """The client-facing name, `<provider>/<model>`."""
        return f"{self.provider_name}/{self.model}"


class Router:
    """Resolves `"<provider>/<model>"` strings and route aliases to ordered lists of targets.

    Routes are checked when the gateway is built, so a typo in a host's configuration fails at start-up,
    not on the first request.
    """

    def __init__(self, providers: Mapping[str, Provider], routes: Mapping[str, Sequence[str] | str]) -> None:
        self.providers = providers
        self.routes: dict[str, tuple[Target, ...]] = {}
        for alias, targets in routes.items():
            names = [targets] if isinstance(targets, str) else list(targets)
            if not names:
                raise ValueError(f"route {alias!r} has no targets")
            resolved = []
            for name in names:
                target = self._direct(name)
                if target is None:
                    raise ValueError(
                        f"route {alias!r}: target {name!r} must be '<provider>/<model>' with a provider "
                        f"among {sorted(providers)}"
                    )
                resolved.append(target)
            self.routes[alias] = tuple(resolved)

    def _direct(self, model: str) -> Target | None:
        provider_name, sep, upstream_model = model.partition("/")
        provider = self.providers.get(provider_name)
        if not sep or not upstream_model or provider is None or not provider.serves(upstream_model):
            return None
        return Target(provider_name, provider, upstream_model)

    def resolve(self, model: str) -> tuple[Target, ...]:
        """Targets for `model`, in the order to try them; 404 `model_not_found` when there are none."""
        route = self.routes.get(model)
        if route is not None:
            return route
        target = self._direct(model)
        if target is None:
            raise GatewayError(
                f"The model '{model}' does not exist. Use '<provider>/<model>' with a provider among "
                f"{sorted(self.providers)}, or a route alias; GET /v1/models lists them.",
                status=404,
                param="model",
                code="model_not_found",
            )
        return (target,)
