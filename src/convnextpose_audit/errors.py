"""Typed errors. Every failure the library reports derives from :class:`AuditError`.

Messages are one line, name the file (and member, where there is one) and say
what is wrong, so the CLI can print them as they are. Each class carries the
process exit code it stands for (``exit_code``), so the CLI maps errors to
codes in one place without knowing the classes.
"""

from __future__ import annotations

from typing import ClassVar

from .exitcodes import ExitCode


class AuditError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNREADABLE


# -- usage: the request cannot be carried out as asked ------------------------------------
class UsageError(AuditError):
    """The command line, an option file or the output location is wrong."""

    exit_code = ExitCode.USAGE


class RegistryError(UsageError):
    """A variants file is missing, unreadable or malformed."""


class ManifestError(UsageError):
    """A --labels manifest is unreadable or malformed."""


class PolicyError(UsageError):
    """A --policy file or --allow name is unreadable or malformed."""


class ConvertError(UsageError):
    """The checkpoint cannot be written in the requested format, or the output cannot be written."""


class SeveralCheckpointsError(UsageError):
    """A command that reads one checkpoint was given a path holding several; the message lists them."""


class OutputError(UsageError):
    """The report or output file cannot be written (missing folder, exists without --force...)."""


class TorchMissingError(UsageError):
    """An operation needs the optional ``torch`` extra, which is not installed."""


# -- unreadable: the input was not fully read -----------------------------------------------
class CheckpointReadError(AuditError):
    """The file could not be fully read: broken, truncated, ambiguous, or not a checkpoint."""

    exit_code = ExitCode.UNREADABLE


class NotACheckpointError(CheckpointReadError):
    """torch.load would refuse these bytes before unpickling anything."""


class ArchiveError(CheckpointReadError):
    """A container (zip, tar, legacy stream, folder) is malformed or inconsistent."""


class AmbiguousContainerError(ArchiveError):
    """Loaders could read these bytes in more than one way; no reading is trusted."""


class MalformedPickleError(CheckpointReadError):
    """A pickle stream is truncated or does not follow the pickle format."""


class UnsupportedCheckpointError(CheckpointReadError):
    """A well-formed checkpoint that uses a feature this reader does not handle."""


class LimitExceeded(CheckpointReadError):
    """Reading would exceed one of the configured :class:`Limits` or the per-file budget."""


class DownloadFailed(CheckpointReadError):
    """A download or remote read could not be completed (no network, quota, HTTP error...)."""


# -- unsafe / mismatch ----------------------------------------------------------------------
class UnsafeCheckpointError(AuditError):
    """The file references globals outside the allowlist. Nothing was called.

    ``module`` and ``name`` are the first refused global as text (undecodable
    bytes shown escaped); ``member`` is the pickle it was found in; ``globals``
    lists every refused global found (each a dotted name).
    """

    exit_code = ExitCode.UNSAFE

    def __init__(self, message: str, *, module: str = "", name: str = "", member: str = "",
                 globals: tuple[str, ...] = ()):
        super().__init__(message)
        self.module = module
        self.name = name
        self.member = member
        self.globals = tuple(globals) or ((f"{module}.{name}",) if module or name else ())


class VariantMismatchError(AuditError):
    """``check(path, expect=...)`` found a different variant than expected."""

    exit_code = ExitCode.MISMATCH

    def __init__(self, message: str, *, result=None):
        super().__init__(message)
        self.result = result
