"""The ``cnxp-audit`` command line: one thin module per command, one exit path."""

from __future__ import annotations

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


class AuditGroup(click.Group):
    """Runs a command and turns its result or error into the process exit code (the one exit path)."""

    def invoke(self, ctx: click.Context):
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


@click.group(cls=AuditGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnxp-audit")
def cli() -> None:
    """Audit PyTorch pose-model checkpoints without trusting them: read safely, infer the
    ConvNeXtPose variant from the tensor shapes, and check the file's label."""


def _register() -> None:
    from . import convert_cmd, diff_cmd, fetch_cmd, inspect_cmd, scan_cmd, variants_cmd, verify_cmd

    for module in (inspect_cmd, scan_cmd, fetch_cmd, verify_cmd, diff_cmd, convert_cmd, variants_cmd):
        cli.add_command(module.command)


_register()


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
