"""The one set of process exit codes. README's exit-code table and ``--help`` mirror this enum.

Each code means exactly one thing; with several files the highest code that applies wins.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ``cnxp-audit`` command."""

    OK = 0  #: every file was read and, where labelled, its label matches
    #: the check came out negative: a declared label disagrees with the inferred variant (or a
    #: labelled file is UNKNOWN), ``verify``'s strict load does not fit, ``diff``'s files differ
    MISMATCH = 1
    USAGE = 2  #: bad command line or option file, unwritable output, missing optional extra
    UNREADABLE = 3  #: an input was not fully read and audited (broken, truncated, ambiguous, unreachable)
    UNSAFE = 4  #: a file references code outside the allowlist; nothing was executed
    NOTHING_AUDITED = 5  #: the run audited no checkpoint at all (like pytest's "no tests collected")
    INTERNAL = 70  #: a bug in cnxp-audit (EX_SOFTWARE); please report it
    INTERRUPTED = 130  #: stopped by Ctrl-C / SIGINT (128 + 2); no partial output was written


#: One line per code, for ``--help`` and the README table (kept here so they cannot drift).
MEANINGS = {
    ExitCode.OK: "all fine (MATCH, UNLABELED, or UNKNOWN without a label)",
    ExitCode.MISMATCH: "a check came out negative: label mismatch or labelled UNKNOWN; verify does not fit; diff differs",
    ExitCode.USAGE: "usage error: bad option or option file, unwritable output, missing optional extra",
    ExitCode.UNREADABLE: "an input was not fully read and audited (UNREADABLE; a failed download)",
    ExitCode.UNSAFE: "a file references code outside the allowlist (UNSAFE); nothing was executed",
    ExitCode.NOTHING_AUDITED: "nothing was audited (empty folder, every file skipped)",
    ExitCode.INTERNAL: "internal error in cnxp-audit (please report; -v shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); no partial output was written",
}
