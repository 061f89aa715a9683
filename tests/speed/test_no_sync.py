"""A training step that is not a logging step never makes the host wait for the device."""

import torch
from voxlora.train import batches
from voxlora.train.loop import train

from tests.speed.syncs import counting_syncs


def test_no_sync_between_logging_steps(setup, monkeypatch):
    model, store, config = setup(max_steps=4, log_every=4, save_minutes=0)
    planned = [
        b for _, b in zip(range(4), batches.iterate_batches(store, config), strict=False)
    ]  # host work, before
    starts, ends = [], []
    with counting_syncs(monkeypatch) as syncs:

        def iterate(*args):
            for b in planned:
                starts.append(len(syncs.calls))
                yield b

        records = list(
            train(
                model, store, config, iterate_batches=iterate, on_step=lambda s: ends.append(len(syncs.calls))
            )
        )
    assert [r["step"] for r in records] == [4]
    per_step = [end - start for start, end in zip(starts, ends, strict=False)]
    assert per_step[:3] == [0, 0, 0], syncs.calls  # steps 1-3: not one read of the device
    assert len(syncs.calls) > ends[2], "the counter sees the logging step's reads"  # it counts what it should


def test_a_nan_step_is_skipped_on_the_device_and_named_at_the_next_log(setup):
    from voxlora.families.csm.loss import csm_loss
    from voxlora.train.loop import NonFinite

    model, store, config = setup(max_steps=6, log_every=3)
    calls = []

    def loss(m, batch):
        calls.append(1)
        backbone, decoder = csm_loss(m, batch)
        return (backbone * float("nan") if len(calls) == 2 else backbone), decoder

    trained = [p for p in model.parameters() if p.requires_grad]
    seen = []

    def on_step(state):
        seen.append([p.detach().clone() for p in trained])

    out = []
    try:
        for record in train(model, store, config, loss=loss, on_step=on_step):
            out.append(record)
    except NonFinite as e:
        assert str(e) == "step 2: the loss is nan" and e.step == 2
    else:
        raise AssertionError("no NonFinite")
    assert out == []  # stopped at step 3's log, before printing it
    assert all(torch.equal(a, b) for a, b in zip(seen[0], seen[1], strict=True))  # step 2 changed no weight
    assert not all(
        torch.equal(a, b) for a, b in zip(seen[1], seen[2], strict=True)
    )  # step 3 did (a good one)
    assert all(torch.isfinite(p).all() for p in trained)
