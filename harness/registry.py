"""One tiny registry shared by tasks, model families, techniques and meters.

Adding a task, a model, a compression technique or an energy meter is one small file
with one ``@REGISTRY.register("name")`` line; tests loop over ``names()`` so a new entry
is tested without writing a new test (the timm pattern).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from harness.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UserError(
                f"unknown {self.kind} {name!r}; use one of: {known}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def check_options(fn: Callable[..., Any], options: Mapping[str, Any], where: str,
                  skip: int = 0) -> None:
    """Reject option keys that ``fn`` does not take, before any work starts.

    Registry entries declare their options as keyword parameters, so the signature is
    the schema and a typo in a suite fails at load time, not after an hour of training.
    ``skip`` positional parameters (the data the step receives) are not options.
    """
    params = list(inspect.signature(fn).parameters.values())[skip:]
    allowed = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UserError(
            f"unknown option {unknown[0]!r} in {where}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
