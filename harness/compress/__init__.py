"""Compression techniques: one file each, one ``@TECHNIQUES.register(name)`` line each.

A technique turns a trained parent into a variant. ``validate`` runs at suite load so a
bad parameter (a sparsity of 1.5) fails before any training starts.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from harness.registry import Registry


class Technique(Protocol):
    def validate(self, params: Mapping[str, Any], where: str) -> None: ...


TECHNIQUES: Registry[Technique] = Registry("technique")
