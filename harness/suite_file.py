"""A suite file read as data: bounded in size, depth and expanded values (YAML aliases),
a key given twice refused, every number finite; and the deep merge a profile or an
override uses."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.errors import UserError

#: The most a suite file may hold: a suite is a page of YAML, not a data file.
MAX_SUITE_BYTES = 1 << 20


MAX_DEPTH = 32


#: Values (mappings, lists and scalars) a suite may hold once its aliases are expanded.
MAX_VALUES = 100_000


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UserError(f"suite key {key!r} is given twice (line {key_node.start_mark.line + 1}); YAML would keep "
                            "only the last: keep one")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def check_values(value: Any, where: str, depth: int = 0, budget: list | None = None) -> None:
    """Every number in a suite is finite (NaN and infinity reach torch, numpy or the clock
    otherwise), the nesting is shallow, and the whole holds at most MAX_VALUES values as
    expanded: one walk over the whole file, task, model, technique and runtime options
    included, run by ``parse`` whatever the entry (a file, a mapping, overrides). The
    budget stops the walk itself: YAML aliases share one object many times over, so a
    few hundred bytes can stand for billions of values, and every later walk (merging,
    hashing, writing the resolved suite) would expand them."""
    budget = [MAX_VALUES, where] if budget is None else budget  # [values left, the whole's name]
    budget[0] -= 1
    if budget[0] < 0:
        raise UserError(f"{budget[1]} expands to more than {MAX_VALUES:,} values (YAML aliases "
                        "repeated within each other?); a suite is a page of YAML: write it out")
    if depth > MAX_DEPTH:
        raise UserError(f"{where} is nested more than {MAX_DEPTH} levels deep; a suite is a page of YAML")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} is {value}; every number in a suite must be finite")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_values(v, f"{where}.{k}", depth + 1, budget)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_values(v, f"{where}[{i}]", depth + 1, budget)


def deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read(path: str | Path) -> dict:
    """The suite file as a mapping, read as data: a bounded size, unique keys, valid YAML;
    one line naming the problem and the fix otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"suite file {path} not found; pass a YAML file such as benchmarks/digits.yaml")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise UserError(f"suite file {path} is {path.stat().st_size:,} bytes, over the {MAX_SUITE_BYTES:,} a suite "
                        "may hold; pass a YAML suite such as benchmarks/digits.yaml")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except RecursionError:
        raise UserError(f"suite file {path} is nested too deeply; a suite is a page of YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"suite file {path} is not valid YAML{where}; fix the syntax or pass a .yaml suite") from None
    except UnicodeDecodeError:
        raise UserError(f"suite file {path} is not a text file; pass a YAML suite such as benchmarks/digits.yaml") from None
    if not isinstance(raw, dict):
        raise UserError(f"suite file {path} must hold a YAML mapping (name:, task:, models:, ...), not {type(raw).__name__}")
    return raw
