"""Exceptions raised by ganalyze.

Every message says what was expected, what was received and how to fix it. The CLI turns a
:class:`GanalyzeError` into one ``Error: ...`` line and the error's ``exit_code``.
"""

from __future__ import annotations


class GanalyzeError(Exception):
    """Base class of every error ganalyze raises on purpose."""

    exit_code: int = 1


class InputError(GanalyzeError, ValueError):
    """A value, file or option handed to ganalyze is not what it expects."""


class OptionConflict(InputError):
    """Options contradict each other or the checkpoint they continue (the CLI shows it as a
    usage error)."""


class NotEnoughData(InputError):
    """A statistic needs more points than it was given (samples, members, cells).

    Raised by the maths; the pipeline turns it into a skipped analysis with this message as the
    reason, and the other analyses run.
    """


class DataError(GanalyzeError):
    """Reference data (MNIST) is missing or unreadable."""

    exit_code = 2


class LoaderError(GanalyzeError):
    """A generator, discriminator or checkpoint cannot be loaded."""


class UnsafeFileError(LoaderError):
    """A file would run code when read (pickled objects, native code); --trust-pickle allows it.

    ``detail`` names what would have been unpickled or run (e.g. "global os.system").
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class CheckpointError(LoaderError):
    """A checkpoint is unreadable, of an unknown format, or inconsistent with the options."""


class TrainingDiverged(GanalyzeError):
    """Losses or weights became NaN or infinite; the message names the last finite checkpoint."""


class TrainingInterrupted(GanalyzeError):
    """Training was stopped (Ctrl-C) after writing a resumable checkpoint."""

    exit_code = 130
