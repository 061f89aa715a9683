"""SIGKILL at an arbitrary step, then --resume: the adapter is bitwise the uninterrupted run's.

A real lora-train process is killed with SIGKILL (nothing can be saved or cleaned up) at a random
moment after it printed step k: inside step k + 1, or while that step's checkpoint is written.
"""

import json
import random
import signal
import time

from voxlora.train import checkpoint

from tests.robust.conftest import STEPS, adapter_bytes, read_until_step, run, start, train_args


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_csm, corpus, reference, tmp_path):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    k, fraction = rng.randint(2, STEPS - 3), rng.random()
    out = tmp_path / "run"
    proc = start(train_args(tiny_csm, corpus, out), tmp_path / "killed.err")
    why = f"killed at {fraction:.2f} of a step after step {k} (seed {seed})"
    try:
        read_until_step(proc, k - 1)
        before = time.perf_counter()
        read_until_step(proc, k)
        # A fraction of one step's time (train + checkpoint, as just measured): the kill lands in
        # step k + 1 or in its checkpoint write, however fast or loaded the machine is.
        time.sleep(fraction * (time.perf_counter() - before))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, why

    saved = checkpoint.checkpoints(out)
    assert saved and checkpoint.STEP_DIR.match(saved[-1].name), why
    newest = int(saved[-1].name.removeprefix("step_"))
    assert k <= newest < STEPS, why
    for path in saved:  # every step folder is whole: written under a temporary name, then renamed
        assert checkpoint.read_checkpoint(path)[0]["step"] == int(path.name[5:]), why
    assert not (out / "adapter_model.safetensors").exists(), why  # no result that looks finished

    resumed = run(train_args(tiny_csm, corpus, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert [r["step"] for r in lines[:-1]] == list(range(newest + 1, STEPS + 1)), why
    assert f"resuming from {saved[-1]} at step {newest}" in resumed.stderr
    ref_out, ref_lines = reference
    assert adapter_bytes(out) == adapter_bytes(ref_out), why  # bitwise
    assert [r["loss"] for r in lines[:-1]] == [r["loss"] for r in ref_lines[newest:]], why
    kept = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert kept == list(range(1, STEPS + 1)), why
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], why  # leftovers cleaned up
