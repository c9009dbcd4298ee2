"""One module per subcommand, as asv's ``commands/``: each declares its arguments (with
their ranges, checked at parse time by ``options.bounded``) in ``add(sub)`` and does its
work in ``run(args)``. ``harness.cli`` builds the parser from ``COMMANDS`` and keeps the
error handling."""

from harness.commands import compare, history, merge, meters, plugins, report, reproduce, run, slurm

COMMANDS = (run, report, compare, reproduce, merge, slurm, history, meters, plugins)
