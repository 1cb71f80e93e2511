"""Domain errors: the CLI turns these into one-line messages and a non-zero exit."""

from __future__ import annotations


class BuilderError(Exception):
    """An error a user can act on; `str()` is the whole message, already naming file, line or task."""


class ConfigError(BuilderError):
    """The project file (builder.toml) is missing a key, has a wrong value, or cannot be read."""


class InputError(BuilderError):
    """An input file or record cannot be used."""


class LabelStudioError(BuilderError):
    """Label Studio could not be reached or refused a request."""


class Interrupted(BuilderError):
    """The user interrupted a run that had already changed something; the message says what and how to finish."""

    exit_code = 130
