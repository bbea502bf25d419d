"""The suite's user-error classes: raised where input is checked, caught only at the CLI edge.

A `UserError` means the user can fix it (a config value, a data file, a run dir, a flag): the
CLI prints its message as one line and exits 2. Anything else is a bug and shows its traceback
(exit 1). `UserError` subclasses `ValueError` so library callers that catch `ValueError` keep working.

    raise DataError(f"{path}: sample 17 is NaN; the file is damaged, re-record or remove it")
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user gave the suite; the message names the problem and the fix."""


class ConfigError(UserError):
    """A configuration mistake (unknown key, wrong type, bad value, bad preset)."""


class RunDirError(UserError):
    """The run directory cannot be used as asked (taken, missing, incomplete, not the suite's)."""


class DataError(UserError):
    """Input data that cannot be used: a missing or unreadable file, a bad layout, bad values."""


class UsageError(UserError):
    """A command-line or API call that asks for something that cannot be done (bad flag values)."""


class BackendError(UserError):
    """The task needs another Keras backend or a package that is not installed here."""


class DivergedError(UserError):
    """Training produced non-finite weights or losses; nothing was published."""
