"""What every command shares: help flags, --quiet/--debug, stderr logging, error mapping, JSONL out.

A tool looks like::

    @command()
    @common_options
    def cli(...): ...

    main = run(cli)   # console-script entry point

Exit codes: 0 success, 1 a user-caused failure (``Error: <file>:<line>: <what>``), 2 usage errors
(click's own), 130 Ctrl-C. Tracebacks only with ``--debug``.
"""

import contextlib
import functools
import logging
import os
import signal
import sys

import click

from voxlora.errors import UsageError, VoxloraError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
log = logging.getLogger("voxlora")


def setup_logging(quiet: bool = False, debug: bool = False) -> None:
    """Logs go to stderr, never stdout (stdout carries data)."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("voxlora")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if not debug:  # third-party chatter (transformers, datasets) stays quiet unless debugging
        for name in ("transformers", "datasets", "huggingface_hub", "peft"):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if quiet or not sys.stderr.isatty():
        # transformers, datasets and the hub read these when first imported, which is after this.
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"


def common_options(f):
    """--quiet and --debug on every command; sets up logging before the command body runs."""

    @click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
    @click.option("--debug", is_flag=True, help="Verbose logs, and a traceback on errors.")
    @functools.wraps(f)
    def wrapper(*args, quiet, debug, **kwargs):
        setup_logging(quiet=quiet, debug=debug)
        ctx = click.get_current_context()
        ctx.meta["voxlora.debug"] = debug
        ctx.meta["voxlora.quiet"] = quiet
        return f(*args, **kwargs)

    return wrapper


# hf-fetch and mkmanifest share one speaker map, so they share the option that names it.
speakers_option = click.option(
    "--speakers",
    "speakers_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Speaker name -> id map (JSON): ids in it are kept, new names added, the file rewritten.",
)


def show_progress() -> bool:
    """Progress bars only where stderr is a terminal and --quiet was not given."""
    ctx = click.get_current_context(silent=True)
    quiet = bool(ctx and ctx.meta.get("voxlora.quiet"))
    return sys.stderr.isatty() and not quiet


overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an output this command wrote before even when it holds trained work, or an "
    "output file of another kind. Never replaces files another command or the user put there.",
)

_stdout_closed = False


def emit(record: dict, stream=None) -> None:
    """One JSON object per line on stdout, flushed so the next tool in a pipe sees it at once.

    When stdout's reader has gone (``| head -1``) in a command that finishes its job anyway
    (``run(cli, finish_on_closed_stdout=True)``), one line says so on stderr and later records are
    dropped; the command's files are written as ever.
    """
    global _stdout_closed
    from voxlora.manifest import write_record

    if _stdout_closed and stream is None:
        return
    try:
        write_record(stream or sys.stdout, record)
    except BrokenPipeError:
        if stream is not None:
            raise
        _stdout_closed = True
        with contextlib.suppress(OSError, ValueError):  # later writes and the exit flush go nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        log.warning(
            "stdout was closed by its reader; going on without it (the output files are still written)"
        )


class Command(click.Command):
    """A click command that turns a `VoxloraError` into ``Error: …`` and exit 1.

    An `OSError` naming a file (permission denied, disk full, not a folder) becomes
    ``Error: <file>: <why>``; any other exception is a bug: ``Error: internal error: …``.

    Doing it here, not only in `run`, means `CliRunner` tests see the same message and exit code.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as e:  # an option value the library found wrong: exit 2, as click's own
            if ctx.meta.get("voxlora.debug"):
                raise
            raise click.UsageError(str(e), ctx) from None
        except VoxloraError as e:
            if ctx.meta.get("voxlora.debug"):
                raise
            raise click.ClickException(str(e)) from None
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt, click.exceptions.Abort):
            raise
        except Exception as e:
            if ctx.meta.get("voxlora.debug"):
                raise
            if isinstance(e, OSError) and e.filename is not None:  # the user's file system, not a bug
                raise click.ClickException(f"{e.filename}: {e.strerror or e}") from None
            raise click.ClickException(  # a bug, not a user mistake: one line unless debugging
                f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)"
            ) from None


def apply_options(options, f):
    """``f`` with each click option of ``options`` applied, as if each were a decorator above it, in order."""
    for option in reversed(options):
        f = option(f)
    return f


def command(**kwargs):
    """`click.command` with voxlora's help flags and error mapping."""
    return click.command(cls=Command, context_settings=CONTEXT, **kwargs)


def run(cli: click.Command, finish_on_closed_stdout: bool = False):
    """Wrap a click command into a console-script ``main`` with voxlora's exit rules.

    A pure filter (mkmanifest, hf-fetch, ...) ends quietly when its reader goes away (``| head``):
    the default SIGPIPE action, as csvkit does. A command whose stdout is a report on long work
    (lora-train's metrics, synth's clips) passes ``finish_on_closed_stdout=True``: SIGPIPE stays
    ignored, `emit` notices the closed pipe, and the work (the adapter, the WAVs) is finished.
    """

    def main(args=None) -> None:
        if hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_IGN if finish_on_closed_stdout else signal.SIG_DFL)
        try:
            code = cli.main(args=args, standalone_mode=False)
        except click.ClickException as e:  # usage errors exit 2, user errors 1
            e.show()
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    main.cli = cli  # tests: CliRunner().invoke(main.cli, [...])
    return main
