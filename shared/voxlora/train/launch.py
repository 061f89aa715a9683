"""``lora-train --nproc N``: the same command on N processes of this machine, under torchrun.

It is exactly::

    torchrun --standalone --nproc_per_node N -m voxlora.cli.lora_train ARGS   # ARGS less --nproc

run by torch's own launcher (`torch.distributed.run`) inside this process, so that a failed job
ends with one line naming the process and how it ended, instead of torchrun's report::

    lora-train: process 1 of 2 was killed by SIGKILL; the job stopped. Newest checkpoint:
    runs/a/step_0000004; run the same command with --resume to continue

A signal to this process (Ctrl-C, SIGTERM) is passed on by torchrun to every process, which
finish their step, save a checkpoint (rank 0) and exit 130 / 143; so does this one.
"""

import logging
import os
from pathlib import Path

import click

from voxlora.clikit import Command

ARGV = "voxlora.argv"  # ctx.meta key: the command line as given


class KeepsArgv(Command):
    """A voxlora command that keeps its command line (``ctx.meta[ARGV]``), to pass it on."""

    def parse_args(self, ctx, args):
        ctx.meta[ARGV] = list(args)
        return super().parse_args(ctx, args)


def without_nproc(argv: list[str]) -> list[str]:
    """The command line less ``--nproc N`` / ``--nproc=N``.

    >>> without_nproc(["--model", "m", "--nproc", "2", "-o", "out", "--nproc=4"])
    ['--model', 'm', '-o', 'out']
    """
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_args(nproc: int, argv: list[str]) -> list[str]:
    return ["--standalone", "--nproc_per_node", str(nproc), "-m", "voxlora.cli.lora_train", *argv]


def launch(nproc: int, argv: list[str], out: Path, debug: bool = False) -> int:
    """Run lora-train ``argv`` on ``nproc`` local processes; the exit code for the whole job."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if not debug:  # torchrun's own log lines (restarts, closing signals, its failure report)
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("torch.distributed"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    try:
        run(get_args_parser().parse_args(torchrun_args(nproc, argv)))
    except SignalException as e:  # passed on to every process, which saved a checkpoint
        return 128 + int(e.sigval)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        if failure.exitcode in (130, 143):  # stopped by a signal sent to the processes: they said so
            return failure.exitcode
        click.echo(
            f"lora-train: {failed(rank, failure, nproc)}; the job stopped. {resume_hint(out)}", err=True
        )
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0


def failed(rank: int, failure, nproc: int) -> str:
    """'process 1 of 2 was killed by SIGKILL' / 'process 0 of 2 failed (exit code 1, its error is above)'."""
    if failure.exitcode < 0:
        return f"process {rank} of {nproc} was killed by {failure.signal_name()}"
    return f"process {rank} of {nproc} failed (exit code {failure.exitcode}; its error is above)"


def resume_hint(out: Path) -> str:
    from voxlora.train.checkpoint import checkpoints

    saved = checkpoints(out)
    if not saved:
        return "No checkpoint was saved (--save-every N saves one every N steps)"
    return f"Newest checkpoint: {saved[-1]}; run the same command with --resume to continue"
