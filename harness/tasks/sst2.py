"""GLUE SST-2: binary sentiment. Train on ``train``, evaluate on ``validation`` (the
872-sentence GLUE dev set; the GLUE test labels are hidden, so dev is the eval split).

Data comes from a GLUE-format folder (``--data-dir`` or ``JOULEBENCH_DATA``, holding
``sst2/``) or, for online users, from the Hub through ``datasets``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

from harness.errors import DataUnavailable, UserError
from harness.tasks import TASKS, Split, TaskData
from harness.tasks.glue import read_tsv

HUB_HOST = "huggingface.co"
HOW_TO_SUPPLY = ("pass --data-dir DIR or set JOULEBENCH_DATA=DIR, where DIR holds sst2/train.tsv and "
                 "sst2/validation.tsv (GLUE format), or run online to fetch glue/sst2 from the Hub")


def find_folder(data_dir: Path) -> Path:
    """Accept the folder holding ``sst2/`` or the ``sst2`` folder itself."""
    for candidate in (data_dir / "sst2", data_dir):
        if (candidate / "train.tsv").is_file():
            return candidate
    if not data_dir.exists():
        raise UserError(f"data folder {data_dir} does not exist; {HOW_TO_SUPPLY}")
    raise UserError(f"no sst2/train.tsv under {data_dir}; {HOW_TO_SUPPLY}")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A fast check, so an offline machine is told at once instead of after ~25 s of retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


@TASKS.register("sst2")
def load_sst2(data_dir: Path | None, *, hub_id: str = "nyu-mll/glue") -> TaskData:
    if data_dir is not None:
        folder = find_folder(Path(data_dir))
        train = read_tsv(folder / "train.tsv")
        evals = read_tsv(folder / "validation.tsv")
        source = str(folder)  # as the user gave it: a relative --data-dir stays portable
    else:
        if not hub_reachable():
            raise DataUnavailable(f"SST-2 data not found and the Hugging Face Hub is unreachable; {HOW_TO_SUPPLY}")
        train, evals = _from_hub(hub_id)
        source = f"hub:{hub_id}/sst2"
    return TaskData(
        name="sst2", train=train, eval=evals, num_labels=2, kind="text", source=source,
        eval_split="validation (GLUE dev, 872 rows in the full set)",
    )


def _from_hub(hub_id: str) -> tuple[Split, Split]:
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, "sst2")
    except Exception as exc:  # the Hub's failure modes are many; the fix is the same
        raise DataUnavailable(f"could not load {hub_id}/sst2 from the Hub ({type(exc).__name__}); {HOW_TO_SUPPLY}") from None

    def split(name: str) -> Split:
        return Split(list(ds[name]["sentence"]), np.asarray(ds[name]["label"], dtype=np.int64))

    return split("train"), split("validation")
