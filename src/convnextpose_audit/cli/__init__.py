"""The ``cnxp-audit`` command line: one thin module per command, one exit path."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import AuditError
from ..exitcodes import MEANINGS, ExitCode
from .output import error

EPILOG = ("\b\nVerdicts: MATCH (label = inferred variant), MISMATCH, UNLABELED (no label; inferred only),\n"
          "UNKNOWN (architecture not in the registry), UNREADABLE, UNSAFE (code refused, never run).\n"
          "\b\nExit codes (the highest that applies across files):\n"
          + "\n".join(f"  {int(code):<3} {text}" for code, text in MEANINGS.items()) + "\n")


#: command name -> module defining ``command``; imported only when that command runs (fast start).
COMMANDS = {"inspect": "inspect_cmd", "scan": "scan_cmd", "fetch": "fetch_cmd", "verify": "verify_cmd",
            "diff": "diff_cmd", "convert": "convert_cmd", "variants": "variants_cmd", "tensors": "tensors_cmd"}


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
        verbose = _verbose(ctx)  # read before click consumes the subcommand's arguments
        try:
            code = super().invoke(ctx)
        except AuditError as exc:
            error(str(exc))
            code = exc.exit_code
        except KeyboardInterrupt:
            error("interrupted")
            code = ExitCode.INTERRUPTED
        except BrokenPipeError:  # the reader of our stdout went away (| head): nothing left to say
            code = ExitCode.OK
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # --help, --version and usage errors: click's own exits
        except Exception as exc:  # a bug: one line, its own code, the traceback only when asked
            code = internal_error(exc, verbose=verbose)
        if isinstance(code, int):
            ctx.exit(int(code))
        return code


def internal_error(exc: BaseException, *, verbose: bool) -> ExitCode:
    """Report an unexpected exception as one line (plus the traceback under -v); return INTERNAL."""
    error(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
          "(please report; -v shows the traceback)")
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return ExitCode.INTERNAL


def _verbose(ctx: click.Context) -> bool:
    # The group still holds the subcommand's raw arguments; -v means "show me more" everywhere.
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    args = [*protected, *ctx.args]
    return any(a in ("-v", "--verbose") for a in args)


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
        error("interrupted")
        return ExitCode.INTERRUPTED
