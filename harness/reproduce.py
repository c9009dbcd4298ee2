"""``joulebench reproduce RUN_DIR``: rerun a run's recorded configuration here and say,
per variant and figure, whether this machine reproduced it (reproduction.py judges).

What is rerun is the run folder's own record of itself: the resolved suite in
``environment.json`` (profile, seeds, task options, measurement settings), on the same
kind of device, with no artifact cache (every model is trained again). Before anything
is written it refuses, in one line, a run whose package versions (comparable.PACKAGES)
or task data (the training data's digest, the eval labels) differ from this machine's,
unless ``allow`` says so. ``quick_subset`` reruns the first recorded seed only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness import environment, rundir
from harness.comparable import PACKAGES
from harness.config import Suite
from harness.errors import UserError
from harness.files import check_creatable, write_atomic
from harness.progress import log as progress_log

ALLOWABLE = ("versions", "data")


@dataclass(frozen=True)
class Plan:
    published: rundir.RunDir
    suite: Suite
    seeds: tuple[int, ...]
    device: str
    out: Path


def plan(run_dir: Path, out: Path | None = None, quick_subset: bool = False,
         allow: frozenset[str] = frozenset()) -> Plan:
    """What to rerun, or a one-line UserError; nothing is written."""
    from harness import suite as suite_mod

    published = rundir.read(Path(run_dir))
    env = published.environment
    recorded = env.get("suite") if isinstance(env, dict) else None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("resolved"), dict):
        raise UserError(f"{run_dir} records no resolved suite (environment.json 'suite.resolved'); reproduce reruns "
                        "what a run folder recorded: pass a folder that 'joulebench run' wrote")
    where = f"{run_dir}/environment.json suite"
    s = suite_mod.parse(recorded["resolved"], where, str(recorded.get("profile") or "full"))
    have = environment.versions()
    differ = [f"{k} {env.get(k)} there, {have[k]} here" for k in PACKAGES if env.get(k) and env.get(k) != have[k]]
    if differ and "versions" not in allow:
        raise UserError(f"{run_dir} was measured with other versions ({'; '.join(differ)}); install those to "
                        "reproduce it, or pass --allow versions to rerun anyway (figures may then differ)")
    seeds = tuple(sorted({r.seed for r in published.records if r.ok}))
    if not seeds:
        raise UserError(f"{run_dir} holds no successful record to reproduce")
    if quick_subset:
        seeds = seeds[:1]
    device = str((published.fingerprint.get("device") or {}).get("type") or "cpu")
    target = Path(out) if out else Path("results") / "reproduce" / f"{s.name}-{datetime.now():%Y%m%d-%H%M%S}"
    check_creatable(target, "reproduction folder")
    return Plan(published, s, seeds, device, target)


def check_data(p: Plan, task: Any, allow: frozenset[str]) -> None:
    """The task's data here against the run's record: training data digest and eval labels."""
    from harness.lineage import task_fingerprint

    recorded = (p.published.environment.get("data") or {}).get("train_sha256")
    labels = next((r.eval.labels for r in p.published.records if r.ok and r.eval is not None), None)
    problems = []
    if recorded and task_fingerprint(task) != recorded:
        problems.append("the training data's digest differs")
    if labels is not None and [int(x) for x in task.eval.labels] != list(labels):
        problems.append("the eval split's labels differ")
    if problems and "data" not in allow:
        raise UserError(f"{p.published.path}: {' and '.join(problems)} from what the run recorded; point --data-dir "
                        "at the data it used, or pass --allow data to rerun anyway")


def run(run_dir: Path, out: Path | None = None, quick_subset: bool = False, allow: frozenset[str] = frozenset(),
        data_dir: Path | None = None, log: Callable[[str], None] = progress_log) -> tuple[int, str]:
    """Rerun, compare, write ``reproduction.md`` and ``.json`` into the folder; (exit code, markdown)."""
    from harness import api, reproduction
    from harness.runner import load_task

    unknown = sorted(set(allow) - set(ALLOWABLE))
    if unknown:
        raise UserError(f"--allow {unknown[0]} is not a difference reproduce can allow; use: {', '.join(ALLOWABLE)}")
    p = plan(run_dir, out, quick_subset, allow)
    s = p.suite
    if p.seeds != s.seeds:
        from harness.suite import with_overrides

        s = with_overrides(s, {"seeds": list(p.seeds)})
    check_data(p, load_task(s, data_dir), allow)
    log(f"joulebench: reproducing {p.published.path} ({s.name}, {s.profile}, seeds {list(p.seeds)}, "
        f"{p.device}) into {p.out}")
    api.run(s, out=p.out / "run", data_dir=data_dir, device=p.device, no_cache=True, log=log,
            command=["joulebench", "reproduce", str(run_dir)])
    checks, meta = reproduction.compare(p.published, rundir.read(p.out / "run"))
    md = reproduction.markdown(checks, meta)
    write_atomic(p.out / "reproduction.md", lambda f: f.write_text(md))
    write_atomic(p.out / "reproduction.json", lambda f: f.write_text(reproduction.as_json(checks, meta)))
    return (1 if any(c.verdict == reproduction.UNEXPECTED for c in checks) else 0), md
