"""The ``cnxp-audit`` command line: one thin module per command, one exit path."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import AuditError, TorchMissingError, UnsafeCheckpointError, VariantMismatchError
from ..exitcodes import ExitCode
from .output import error

EPILOG = """\b
Verdicts: MATCH (label = inferred variant), MISMATCH, UNLABELED (no label; inferred only),
UNKNOWN (architecture not in the registry), UNREADABLE, UNSAFE (pickled code refused).
\b
Exit codes (the highest that applies across files):
  0  all fine
  1  a declared label disagrees with the inferred variant, or a labelled file is UNKNOWN
  2  usage error (or a needed optional extra is missing)
  3  a file could not be fully read (or a download failed)
  4  unsafe content refused (nothing executed)
"""


def exit_code_for_error(exc: AuditError) -> ExitCode:
    """The exit code for an error that ended a command."""
    if isinstance(exc, UnsafeCheckpointError):
        return ExitCode.UNSAFE
    if isinstance(exc, TorchMissingError):
        return ExitCode.USAGE
    from ..convert import ConvertError
    from ..labels import ManifestError
    from ..variants import RegistryError
    if isinstance(exc, (ManifestError, RegistryError)):
        return ExitCode.USAGE
    if isinstance(exc, (VariantMismatchError, ConvertError)):
        return ExitCode.MISMATCH
    return ExitCode.UNREADABLE


#: command name -> module defining ``command``; imported only when that command runs (fast start).
COMMANDS = {"inspect": "inspect_cmd", "scan": "scan_cmd", "fetch": "fetch_cmd", "verify": "verify_cmd",
            "diff": "diff_cmd", "convert": "convert_cmd", "variants": "variants_cmd"}


class AuditGroup(click.Group):
    """Loads commands lazily and turns a command's result or error into the exit code (the one exit path)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        import importlib

        return importlib.import_module(f".{module}", __name__).command

    def invoke(self, ctx: click.Context):
        _tolerate_unencodable_output()
        try:
            code = super().invoke(ctx)
        except AuditError as exc:
            error(str(exc))
            code = exit_code_for_error(exc)
        except KeyboardInterrupt:
            error("interrupted")
            code = ExitCode.UNREADABLE
        except BrokenPipeError:
            code = ExitCode.OK
        if isinstance(code, int):
            ctx.exit(int(code))
        return code


def _tolerate_unencodable_output() -> None:
    # File names need not be valid UTF-8; print them escaped rather than die on them.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


@click.group(cls=AuditGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnxp-audit")
def cli() -> None:
    """Audit PyTorch pose-model checkpoints without trusting them: read safely, infer the
    ConvNeXtPose variant from the tensor shapes, and check the file's label."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``python -m convnextpose_audit`` exits with it)."""
    try:
        return int(cli.main(args=argv, prog_name="cnxp-audit", standalone_mode=False) or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except click.Abort:
        error("aborted")
        return ExitCode.USAGE
