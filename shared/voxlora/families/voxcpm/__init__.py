"""VoxCPM (OpenBMB) as a family: a MiniCPM-4 language model plus a local diffusion transformer.

Checked against the voxcpm package's model code (2.0.3: ``VoxCPMModel``, ``VoxCPM2Model``; the
tests build tiny models with it and compare)::

    base_lm.layers.{i}.self_attn.{q,k,v,o}_proj       text-semantic LM (MiniCPM-4)
    base_lm.layers.{i}.mlp.{gate,up,down}_proj
    residual_lm.layers.{i}....                          residual acoustic LM, same layer
    feat_encoder.encoder.layers.{i}....                 local encoder (LocEnc)
    feat_decoder.estimator.decoder.layers.{i}....       local DiT (the diffusion estimator)
    enc_to_lm_proj, lm_to_dit_proj, res_to_dit_proj     the projections between them
    fusion_concat_proj                                  VoxCPM2 only
    fsq_layer.{in,out}_proj, stop_proj, stop_head       scalar quantizer, stop predictor
    audio_vae.*                                         the AudioVAE: its own file

VoxCPM's own LoRA (``LoRAConfig``) has three switches, which voxlora's options match:
``enable_lm`` (base_lm and residual_lm) is ``--component lm``, ``enable_dit`` (the DiT estimator)
is ``--component dit``, both is ``--component all``, and ``enable_proj`` is adding ``proj`` to
``--targets`` (its ``target_proj_modules``). Its default target modules (q, k, v, o in LM and DiT)
are ``--targets attn``. The local encoder is never wrapped by VoxCPM's LoRA, so no component
reaches it.

config.json has ``"architecture": "voxcpm"`` (VoxCPM-0.5B, VoxCPM1.5) or ``"voxcpm2"`` (no
model_type) with lm_config, encoder_config, dit_config and audio_vae_config. The weights are
model.safetensors, or pytorch_model.bin (VoxCPM-0.5B); the AudioVAE is audiovae.safetensors or
audiovae.pth, which lora-merge copies as they are. Loading, latents, batches, loss and speaking
live beside this file (`load`, `latents`, `batch`, `data`, `train_torch`, `synth_torch`), on VoxCPM's
own classes (`runtime`).
"""

from voxlora.families.layout import Family

ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
PROJ = ("enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj", "fusion_concat_proj")  # target_proj_modules

FAMILY = Family(
    name="voxcpm",
    model_types=("voxcpm", "voxcpm2"),
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
    side_files=("audiovae.pth", "audiovae.safetensors"),
    pickle_weights=("pytorch_model.bin",),  # VoxCPM-0.5B
    description="VoxCPM: MiniCPM-4 LM (base_lm, residual_lm) + local DiT; "
    "the AudioVAE (audiovae.pth / .safetensors) is never targeted",
)
