"""The one set of process exit codes. README's exit-code table mirrors this enum."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ``cnxp-audit`` command; with several files the highest applies."""

    OK = 0  #: every file read and, where labelled, its label matches
    MISMATCH = 1  #: a declared label disagrees with the inferred variant, or a labelled file is UNKNOWN
    USAGE = 2  #: bad command line, or a needed optional extra is missing
    UNREADABLE = 3  #: a file could not be fully read (or a download failed)
    UNSAFE = 4  #: unsafe pickled content was refused; nothing was executed
