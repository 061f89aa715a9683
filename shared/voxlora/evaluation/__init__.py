"""lora-eval's core: did the fine-tune work? Numbers and sound for base, adapters and real recordings.

    evaluate.py  the whole run: read, speak or take the clips, score, summarise, write REPORT/
    scorer.py    Scorer: one clip -> wer, cer, speaker_sim, length sanity (ASR + speaker encoder)
    run.py       speak each held-out text with the base and each adapter (same seed/speaker/context),
                 or take existing clips; the real recordings beside them
    summary.py   per-system means, the stderr table, the "adapter has no effect" findings
    report.py    REPORT/index.html: one self-contained page (table, chart, players side by side)

Nothing is imported here, so importing one part stays light.
"""
