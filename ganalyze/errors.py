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


class DataError(GanalyzeError):
    """Reference data (MNIST) is missing or unreadable."""

    exit_code = 2


class LoaderError(GanalyzeError):
    """A generator, discriminator or checkpoint cannot be loaded."""


class UnsafeFileError(LoaderError):
    """A file would run code when read (pickled objects, native code); --trust-pickle allows it."""


class CheckpointError(LoaderError):
    """A checkpoint is unreadable, of an unknown format, or inconsistent with the options."""


class TrainingInterrupted(GanalyzeError):
    """Training was stopped (Ctrl-C) after writing a resumable checkpoint."""

    exit_code = 130
