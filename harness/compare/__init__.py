"""``joulebench compare BASE NEW``: did a change make any variant less accurate or more
energy-hungry? Exit 1 on a regression beyond the thresholds, 0 otherwise.

BASE and NEW are each one run dir or several (comma-separated): repeated runs of the
same suite (a run given twice on one side counts once). They must have been measured
the same way: the same suite, task and device, the same energy method, the same
machine (host and the CPU as the kernels see it: ISA flags, torch's CPU capability,
cores, memory) and the same resolved config; any difference is refused in one line
that shows it, unless ``allow`` names it, and the output then says what differed.

``decide`` returns a ``Comparison`` (one ``Verdict`` per variant: its tests, the
reference used, what was withheld and why); ``render`` only prints it.

Per variant present on both sides:

- **accuracy**: paired on the same eval examples and seeds when both sides have them
  (McNemar for one seed; a paired seeds x examples bootstrap for several: stats.py),
  Holm-adjusted across variants. A regression is a drop larger than ``acc_drop`` that
  is significant at ``alpha`` after Holm. Without paired examples, the 95% intervals
  are compared and the output says so; no p-value is printed, because none was computed.

- **energy**: the unit is the *run*, not the window. Windows of one run share that
  run's machine state (a window-level test called every variant of a real A/A here
  "significant"). Each run contributes its median J/inference per variant; two
  one-sided Mann-Whitney U tests run over those run medians, Holm-adjusted across
  variants:
  * raw: did J/inference rise? Catches a change that makes every variant costlier,
    but only beyond the machine's run-to-run drift.
  * relative: did it rise against the drift of the same run, as the *other* variants
    saw it? Each variant's run median is first put on its own scale (log, minus its
    median over the BASE runs); a run's drift for variant v is the median of the other
    variants' values in that run (v left out). A change in one variant must not flag
    another (the geometric mean of the others, used before, flagged all seven innocent
    variants when one got 50% cheaper), so the reference is built in two passes: the
    first finds the variants that moved on their own (relative change beyond
    ``energy_rise``, two-sided U p < alpha) one at a time, the largest first, each left
    out of every other variant's reference before the next is looked for (so with three
    variants one mover does not drag both references along and mark all three), the
    second leaves those out of every other variant's reference. Where no unmoved variant
    is left to build a reference from, the output says so in one line.
    If a variant's reference itself fell significantly in NEW, that is either the
    machine (NEW ran on a faster state) or the other variants (they got cheaper). The
    runs say which: a variant whose artifact keys (trained module, runtime file),
    resolved run config and package versions are the same in BASE and NEW ran the same
    code path on the same model, so it did not get cheaper by itself. When every variant
    in the reference is unchanged so, its fall is drift and the relative rise stands (the
    output says the reference fell and why that is drift); otherwise the verdict is
    withheld and the output names the changed variants. Blind to a change that hits
    every variant equally: that is what the raw test is for.
  A regression needs significance at ``alpha`` after Holm and a median rise above
  ``energy_rise``. With too few runs to reach significance the changes are printed,
  not gated, and the output says how many runs it takes. ``windows_as_units``
  replaces both by the window-level raw test, for machines whose own A/A shows
  run-to-run drift below the threshold.
"""

from __future__ import annotations

from harness.compare.decide import Comparison, Verdict, decide
from harness.compare.render import compare, render
from harness.compare.sides import Thresholds

__all__ = ["Comparison", "Thresholds", "Verdict", "compare", "decide", "render"]
