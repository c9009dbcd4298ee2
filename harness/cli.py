"""Command line: ``joulebench run | report | compare | merge | history | meters``.

Each subcommand lives in ``harness/commands/<name>.py`` (its arguments, their ranges and
its run function). This module builds the parser and keeps the error handling: bad input
is a UserError, one line on stderr, a non-zero exit, no traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from harness.errors import UserError


def parser() -> argparse.ArgumentParser:
    from harness.commands import COMMANDS

    p = argparse.ArgumentParser(prog="joulebench", description="How much accuracy does each joule buy?")
    from harness import __version__

    p.add_argument("--version", action="version", version=f"joulebench {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only (anywhere on the line)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug lines too (anywhere on the line)")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from harness.progress import configure

    # -q / -v anywhere before "--": the verbosity of every subcommand's progress lines
    cut = argv.index("--") if "--" in argv else len(argv)
    quiet, verbose = (any(a in names for a in argv[:cut]) for names in (("-q", "--quiet"), ("-v", "--verbose")))
    argv = [a for i, a in enumerate(argv) if i >= cut or a not in ("-q", "--quiet", "-v", "--verbose")]
    configure(-1 if quiet else 1 if verbose else 0)
    args = parser().parse_args(argv)
    args.argv = argv[1:]  # after the subcommand: recorded so a run says how to reproduce it
    try:
        return args.func(args)
    except UserError as exc:
        print(f"joulebench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system said no (full disk, permissions): not a joulebench bug
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"joulebench: error: {exc.strerror or exc}{where}; check the path and free space, then rerun "
              "(with --resume RUN_DIR for an interrupted run)", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # a history file damaged past what its checks saw
        print(f"joulebench: error: the history database could not be read ({exc}); restore it from a copy, or "
              "start another --db", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("joulebench: interrupted", file=sys.stderr)
        return 130
