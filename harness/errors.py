"""Errors a user can fix, kept apart from bugs.

The CLI prints a UserError as one line and exits non-zero without a traceback; any
other exception is a bug in joulebench and keeps its traceback so it can be reported.
"""


class UserError(Exception):
    """Bad input: the message names the problem and the fix, on one line."""

    exit_code = 2


class DataUnavailable(UserError):
    """A task's data is neither on disk nor reachable on the Hub.

    A distinct exit code lets run_all.sh skip that suite with its reason and go on.
    """

    exit_code = 3


class MeterError(UserError):
    """An energy reading that cannot be trusted (0 J, negative, unreadable counter)."""

    exit_code = 4


class VariantSkipped(Exception):
    """Not an error: the variant cannot be built or run here, for the reason given.
    Raised by techniques and runtimes alike, so it lives at the bottom layer."""
