"""``--attention``: which attention kernel transformers runs (``attn_implementation``), chosen
explicitly rather than left to transformers' default, and the training variant that never waits
for the device.

``sdpa`` (the default: torch's scaled_dot_product_attention, flash or memory-efficient kernels on a
GPU), ``eager`` (plain matmuls: the reference), ``flash_attention_2`` (needs the flash-attn package
and a CUDA GPU). CSM and Higgs declare support for all three (``_supports_sdpa``,
``_supports_flash_attn``).

Training sequences are right-padded and causal, so they need no mask. transformers still builds
one, and on the way reads the device (its packed-sequence check on the position ids, an "is the
padding mask all ones" test): host syncs in every forward of each of CSM's two transformers.
`causal_training` points the attention at the same kernel under a name transformers has no mask
recipe for (``voxlora_causal_sdpa``) for the duration of the training loss, so it skips building a
mask and the kernel runs causal (``is_causal``) as it would anyway. Generation keeps transformers'
own (a padded batch needs its mask).
"""

import contextlib

ATTENTION = ("sdpa", "eager", "flash_attention_2")  # lora-train / synth --attention
CAUSAL_PREFIX = "voxlora_causal_"


@contextlib.contextmanager
def causal_training(*configs):
    """Within: these (sub)configs' sdpa / flash attention runs causal without transformers' mask
    building (see the module's docstring); eager needs its explicit mask and keeps it."""
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    before = [c._attn_implementation_internal for c in configs]
    for config in configs:
        attention = config._attn_implementation
        if attention in ("sdpa", "flash_attention_2"):
            name = CAUSAL_PREFIX + attention
            if name not in ALL_ATTENTION_FUNCTIONS:
                AttentionInterface.register(name, ALL_ATTENTION_FUNCTIONS[attention])
            config._attn_implementation_internal = name
    try:
        yield
    finally:
        for config, value in zip(configs, before, strict=True):
            config._attn_implementation_internal = value


def reported(model) -> str:
    """The implementation a loaded model runs (``config._attn_implementation``), without our prefix."""
    return str(model.config._attn_implementation).removeprefix(CAUSAL_PREFIX)
