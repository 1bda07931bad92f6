"""Policy as code: globals a team accepts by name, as ``torch.serialization.add_safe_globals`` would.

A policy only ever adds exact dotted names to the built-in allowlist; each comes
with a reason and the place it was given (``--allow`` or a ``--policy`` file).
Nothing is trusted by repository, file name or pattern. A policy file is TOML::

    [allow]
    "argparse.Namespace" = "our training script pickles its parsed options"

Names of kind ``callable`` or ``torchscript`` (see ``globals.toml``) are refused:
allowing them would let a file run code, and TorchScript archives run their own
code whatever is allowed, so they stay UNSAFE.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Iterable

from .classify import Classifier, default_classifier
from .errors import PolicyError
from .plain import Plain

#: A dotted Python name: identifiers (TorchScript's ``__torch__`` included) joined by dots, at least two parts.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_REFUSED_KINDS = ("callable", "torchscript")


class Allowed(Plain):
    """One accepted global: its dotted name, why, and where the acceptance came from."""

    __slots__ = ("name", "reason", "source")

    def __init__(self, name: str, reason: str, source: str):
        self.name = name
        self.reason = reason
        self.source = source


@dataclass(frozen=True)
class Policy:
    """The globals accepted beyond the built-in allowlist (empty by default)."""

    entries: tuple[Allowed, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def names(self) -> frozenset[str]:
        """The accepted dotted names."""
        return frozenset(e.name for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{sources, allow: [{name, reason, source}]}``."""
        return {"sources": list(self.sources),
                "allow": [{"name": e.name, "reason": e.reason, "source": e.source} for e in self.entries]}


def build_policy(allow: Iterable[str] = (), policy_file: str | None = None,
                 classifier: Classifier | None = None) -> Policy:
    """A policy from ``--allow NAME`` options and a ``--policy`` file; raises :class:`PolicyError`."""
    classifier = classifier or default_classifier()
    entries: dict[str, Allowed] = {}
    sources: list[str] = []
    if policy_file is not None:
        for name, reason in _read_file(policy_file).items():
            entries[name] = _entry(name, reason, policy_file, classifier)
        sources.append(policy_file)
    given = list(allow)
    for name in given:
        entries.setdefault(name, _entry(name, "allowed with --allow on the command line", "--allow", classifier))
    if given:
        sources.append("--allow")
    return Policy(tuple(entries.values()), tuple(sources))


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except IsADirectoryError:
        raise PolicyError(f"{path}: is a folder, not a policy file") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    unknown = sorted(set(data) - {"allow"})
    if unknown:
        raise PolicyError(f"{path}: unknown table or key {unknown[0]!r} (a policy has only [allow])")
    table = data.get("allow", {})
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: [allow] must be a table of \"module.name\" = \"reason\"")
    return table


def _entry(name: Any, reason: Any, source: str, classifier: Classifier) -> Allowed:
    where = os.fspath(source)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if isinstance(name, str) else repr(name)
        hint = " (patterns are not accepted: name each global exactly)" if isinstance(name, str) and "*" in name else ""
        raise PolicyError(f"{where}: {shown[:120]!r} is not a dotted global name like argparse.Namespace{hint}")
    if not isinstance(reason, str) or not reason.strip():
        raise PolicyError(f"{where}: {name}: give the reason it is allowed (\"{name}\" = \"why\")")
    kind = classifier.classify(name)
    if kind.kind in _REFUSED_KINDS and kind.source != "unknown":
        raise PolicyError(f"{where}: {name} cannot be allowed: it is {kind.kind} ({kind.reason})")
    return Allowed(name, reason.strip(), where)
