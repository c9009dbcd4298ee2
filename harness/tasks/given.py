"""The arrays handed to ``api.bench`` (which builds their TaskData itself, with the
tensors task's row checks): registered so a suite that api.bench makes names its task;
a suite file that names it is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from harness.errors import UserError
from harness.tasks import TASKS, TaskData


@TASKS.register("given")
def load_given(data_dir: Path | None, *, sha256: Annotated[str, Field(min_length=64, max_length=64)]) -> TaskData:
    raise UserError("task 'given' is the arrays handed to api.bench in Python; a suite file names arrays with "
                    "task: tensors (docs/data-and-models.md)")
