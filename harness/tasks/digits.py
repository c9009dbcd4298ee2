"""scikit-learn's bundled digits: real data that ships inside the wheel, no download.

1,797 8x8 greyscale images of handwritten digits (UCI optdigits test set). The split is
stratified and seeded so every run of the suite evaluates on the same 25%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.registry import between
from harness.tasks import TASKS, Split, TaskData

Fraction = between(0, 1, open_low=True, open_high=True)
Seed = between(0, 2**32 - 1, int)


@TASKS.register("digits")
def load_digits(data_dir: Path | None, *, eval_fraction: Fraction = 0.25, split_seed: Seed = 0) -> TaskData:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < eval_fraction < 1:
        raise UserError(f"digits eval_fraction must be in (0, 1), got {eval_fraction}")
    bunch = sk_load_digits()
    # Pixel values are 0..16; scale to 0..1 and add the channel axis a CNN expects.
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_train, x_eval, y_train, y_eval = train_test_split(
        images, labels, test_size=eval_fraction, random_state=split_seed, stratify=labels
    )
    return TaskData(
        name="digits",
        train=Split(x_train, y_train),
        eval=Split(x_eval, y_eval),
        num_labels=10,
        kind="image",
        source="sklearn.datasets.load_digits (bundled)",
        eval_split=f"stratified {eval_fraction:.0%} hold-out, seed {split_seed}",
        info={"n_total": len(labels)},
    )
