"""`python -m bench.gpu --smoke`: the GPU benchmark's code on the tiny model, on whatever is here."""


def test_gpu_benchmark_smoke_writes_its_results(tmp_path):
    """In this process (``python -m bench.gpu --smoke`` is its ``main``): no second torch import, and
    dynamo's one-off start-up is shared with the --compile tests."""
    from bench import gpu

    results = tmp_path / "results"
    assert gpu.main(["--smoke", "--workdir", str(tmp_path / "work"), "--results", str(results)]) == 0
    (report,) = results.glob("*-smoke.md")
    text = report.read_text()
    for figure in ("audio-s / s", "peak memory MiB", "MFU", "synth single stream", "frames / s"):
        assert figure in text
    assert "## profile: training step" in text and "## profile: one generated frame" in text
    assert "host time in kernel launches" in text
    # both trainers, both amortisations, voxlora with --compile off and on
    assert "| voxlora | False | 1 |" in text and "| voxlora | True | 1 |" in text
    assert "| voxlora | False | 0.0625 |" in text and "| reference | False | 0.0625 |" in text
    assert "amortisation 1, compile on | audio-s / s" in text
    for compiled in ("off", "on"):  # host syncs counted from CUDA's own calls (n/a without a GPU)
        section = text.split(f"## profile: training step (voxlora, amortisation 1, compile {compiled})")[1]
        assert "host syncs (reads of the device) " in section.split("```")[0]
