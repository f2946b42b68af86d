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
