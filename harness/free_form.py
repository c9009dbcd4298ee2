"""A record's free-form mappings (fingerprint, device, runtime, sweep, ...) held to plain
JSON values a reader can compute with, and the keys of them a reader takes as a given
kind; the environment file is held to the same."""

from __future__ import annotations

import math
from typing import Any


#: A record's free-form mappings: read by the report and compare, so held to plain JSON
#: values (finite numbers in float range, 64-bit integers, at most MAX_FREE_DEPTH deep).
FREE_FORM = ("fingerprint", "device", "runtime", "meter", "flops", "data", "params", "model_info", "technique_info",
             "cached", "sweep")
MAX_FREE_DEPTH = 16
#: Keys of those mappings that the report reads as a given kind: (mapping, key, kinds).
TYPED_KEYS = (("device", "type", (str,)), ("device", "model", (str, type(None))), ("device", "index", (int, type(None))),
              ("runtime", "name", (str,)), ("runtime", "options", (dict,)), ("meter", "method", (str,)),
              ("meter", "formulas", (list,)), ("flops", "per_inference", (int, float, type(None))),
              ("flops", "train", (int, float, type(None))), ("sweep", "tuning_J_per_seed", (int, float)),
              ("sweep", "tuning_J", (int, float)), ("data", "n_eval", (int,)), ("data", "eval_split", (str,)))


def plain(value: Any, where: str, depth: int = 0) -> None:
    """ValueError unless ``value`` is plain JSON a reader can compute with."""
    if depth > MAX_FREE_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_FREE_DEPTH} levels deep")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise ValueError(f"{where} is an integer beyond 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}")
    elif isinstance(value, dict):
        for k, v in value.items():
            plain(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            plain(v, f"{where}[{i}]", depth + 1)
