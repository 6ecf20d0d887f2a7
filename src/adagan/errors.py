"""Exceptions that carry a message meant for the user.

Library code raises these with a one-line message that says what went wrong
and what to do; the CLI prints the message (no traceback) and exits non-zero.
"""


class AdaganError(Exception):
    """Base class: `str(err)` is a complete, user-facing one-line message."""


class ConfigError(AdaganError, ValueError):
    """A setting, flag or override is invalid."""


class CheckpointError(AdaganError):
    """A weights/checkpoint file is missing, not ours, truncated or mismatched."""


class DatasetError(AdaganError):
    """A dataset source or file cannot be used."""


class WeightsError(AdaganError):
    """Detector weights (Inception, LPIPS) are missing or wrong."""


class TrainingDiverged(AdaganError):
    """Losses stayed non-finite for several ticks; the last good training state is kept."""
