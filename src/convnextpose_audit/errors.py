"""Typed errors. Every failure the library reports derives from :class:`AuditError`.

Messages are one line, name the file (and member, where there is one) and say
what is wrong, so the CLI can print them as they are.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of every error this project raises on purpose."""


class CheckpointReadError(AuditError):
    """The file could not be fully read: broken, truncated, or not a checkpoint."""


class NotACheckpointError(CheckpointReadError):
    """The bytes are not any container torch has written."""


class ArchiveError(CheckpointReadError):
    """A container (zip, tar, legacy stream, folder) is malformed or inconsistent."""


class MalformedPickleError(CheckpointReadError):
    """A pickle stream is truncated or does not follow the pickle format."""


class UnsupportedCheckpointError(CheckpointReadError):
    """A well-formed checkpoint that uses a feature this reader does not handle."""


class LimitExceeded(CheckpointReadError):
    """Reading would exceed one of the configured :class:`Limits`."""


class UnsafeCheckpointError(AuditError):
    """The pickle asks for a global outside the allowlist. Nothing was called.

    ``module`` and ``name`` are the requested global as text (undecodable bytes
    are shown escaped); ``member`` is the pickle it was found in.
    """

    def __init__(self, message: str, *, module: str = "", name: str = "", member: str = ""):
        super().__init__(message)
        self.module = module
        self.name = name
        self.member = member


class VariantMismatchError(AuditError):
    """``check(path, expect=...)`` found a different variant than expected."""

    def __init__(self, message: str, *, result=None):
        super().__init__(message)
        self.result = result


class TorchMissingError(AuditError):
    """An operation needs the optional ``torch`` extra, which is not installed."""
