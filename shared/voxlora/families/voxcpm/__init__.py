"""VoxCPM (OpenBMB) as a family: a MiniCPM-4 language model plus a local diffusion transformer.

Written from the OpenBMB/VoxCPM sources as remembered (no copy here to check against)::

    base_lm.layers.{i}.self_attn.{q,k,v,o}_proj       text-semantic LM (MiniCPM-4)
    base_lm.layers.{i}.mlp.{gate,up,down}_proj
    residual_lm.layers.{i}....                          residual acoustic LM, same layer
    feat_encoder.encoder.layers.{i}....                 local encoder (LocEnc)
    feat_decoder.estimator.decoder.layers.{i}....       local DiT (the diffusion estimator)
    enc_to_lm_proj, lm_to_dit_proj, res_to_dit_proj     the projections between them
    fsq_layer.{in,out}_proj, stop_proj, stop_head       scalar quantizer, stop predictor
    audio_vae.*                                         the AudioVAE codec: its own file, audiovae.pth

VoxCPM's own LoRA has three switches, which voxlora's options match:
``enable_lm`` (base_lm and residual_lm) is ``--component lm``, ``enable_dit`` (the DiT estimator)
is ``--component dit``, both is ``--component all``, and ``enable_proj`` is adding ``proj`` to
``--targets``. Its default target modules (q, k, v, o in LM and DiT) are ``--targets attn``.
The local encoder is never wrapped by VoxCPM's LoRA, so no component reaches it.

config.json has ``"architecture": "voxcpm"`` (no model_type) with lm_config, encoder_config and
dit_config; the AudioVAE lives in audiovae.pth (a pickle voxlora never opens: lora-merge copies it).
"""

from voxlora.families.layout import Family

ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
PROJ = ("enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj")  # VoxCPM's target_proj_modules

FAMILY = Family(
    name="voxcpm",
    model_types=("voxcpm",),
    stacks={
        "base_lm": ("base_lm.layers",),
        "residual_lm": ("residual_lm.layers",),
        "encoder": ("feat_encoder.encoder.layers",),
        "dit": ("feat_decoder.estimator.decoder.layers",),
    },
    linears=ATTN + MLP,
    presets={
        "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
        "mlp": ("gate_proj", "up_proj", "down_proj"),
        "all-linear": ("attn", "mlp"),  # the layers' linears only: the projections when named
        "proj": PROJ,  # enable_proj
    },
    components={"lm": ("base_lm", "residual_lm"), "dit": ("dit",)},  # enable_lm, enable_dit
    heads={name: (name,) for name in PROJ},
    order=("base_lm", "residual_lm", "encoder", "dit", *PROJ),  # as VoxCPMModel defines them
    embeddings=(("base_lm.embed_tokens",),),
    codec=("audio_vae.",),
    side_files=("audiovae.pth",),
    description="VoxCPM: MiniCPM-4 LM (base_lm, residual_lm) + local DiT; "
    "the AudioVAE (audiovae.pth) is never targeted",
)
