"""Exception types shared by every part of vocalsep.

Library code raises these specific types; the command line turns them into one-line messages.
"""


class VocalsepError(Exception):
    """Base class of every error vocalsep raises on purpose."""


class ConfigError(VocalsepError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class CheckpointError(VocalsepError):
    """A checkpoint file is missing, truncated, foreign or incompatible."""


class VocalsepWarning(UserWarning):
    """Something worked, with a caveat the user should hear about (the command line prints
    it as one `vocalsep: warning: ...` line)."""


class OutputExistsError(VocalsepError):
    """An output file exists and the caller did not ask to replace it. The message names the
    API's `overwrite=True`; the command line names its own flag."""

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(f"{path} exists; pass overwrite=True to replace it")


class OptionError(ConfigError):
    """The options of a call do not fit the model or each other (an unknown stem, two things
    to score at once, ...): the caller's mistake, found before any work. `options` names the
    parameters concerned, so the command line can name its flags; it reports the error as a
    usage error (exit code 2)."""

    def __init__(self, message: str, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options
