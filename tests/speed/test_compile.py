"""--compile: the same losses as without, and one compile per bucket of batch shapes, not per batch."""

import pytest
from voxlora.backends.torch import compile as compile_mod
from voxlora.families.csm.batches import Buckets, padded_shape
from voxlora.train import batches
from voxlora.train.loop import train

# dynamo's capture, guards and recompiles with no backend compiler: what --compile's shapes decide,
# in ~10 s (aot_eager takes ~3x, inductor's C++ much more; real runs use inductor)
BACKEND = "eager"


@pytest.fixture
def eager_backend(monkeypatch):
    monkeypatch.setattr(compile_mod, "BACKEND", BACKEND)


def run(setup, compile_: bool, **overrides):
    from voxlora.backends.torch.compile import Compiled, attach

    model, store, config = setup(max_steps=3, log_every=1, lr=1e-3, **overrides)
    if compile_:
        csm = model.get_base_model()
        attach(csm, Compiled({"backbone": csm.backbone_model, "decoder": csm.depth_decoder.model}))
        rows = None if config.max_batch_frames else config.batch_size
        store.buckets = Buckets(
            int(csm.config.max_position_embeddings), rows=rows, budget=config.max_batch_frames
        )
    records = list(train(model, store, config))
    return records, store, config


def test_compiled_losses_equal_eager_and_compiles_stay_per_bucket(setup, eager_backend):
    overrides = {"decoder_frame_fraction": 0.5}  # the depth decoder's rows are padded too
    eager, _, _ = run(setup, False, **overrides)
    compiled, store, config = run(setup, True, **overrides)
    assert [r["loss"] for r in compiled] == pytest.approx([r["loss"] for r in eager], rel=1e-4)
    shapes = set()  # the (rows, positions) buckets the 3 steps' batches fall into, and decoder rows
    for _, _, micro in (x for _, x in zip(range(3), batches.iterate_batches(store, config), strict=False)):
        for b in micro:
            shapes.add(("backbone", *b.tokens.shape))
            shapes.add(("decoder", b.decoder_rows))
    assert "compiles" not in eager[-1]
    assert 1 <= compiled[-1]["compiles"] <= len(shapes), shapes
    assert all(b.tokens.shape == padded_shape(store.buckets, *b.tokens.shape) for b in micro)


def test_buckets_pad_to_a_few_shapes():
    b = Buckets(max_positions=2048, rows=4)
    assert {padded_shape(b, 3, t) for t in range(1, 2049)} == {(4, 2**k) for k in range(6, 12)}
    assert padded_shape(Buckets(max_positions=100, rows=2), 2, 90) == (2, 100)  # never past the model
    budget = Buckets(max_positions=2048, budget=1024)  # --max-batch-frames: rows fill the budget
    shapes = {padded_shape(budget, 1024 // t, t) for t in range(64, 1025)}  # the batcher's fullest batches
    assert len(shapes) <= 5 * 5 and all(r * t <= 2.5 * 1024 for r, t in shapes)  # 5 per length bucket
