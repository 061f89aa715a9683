"""Tiny VoxCPM checkpoints (VoxCPM-0.5B / 1.5 layout, and VoxCPM2) written with VoxCPM's own classes.

The config is built from VoxCPM's pydantic config classes (`VoxCPMConfig`, `MiniCPM4Config`,
`AudioVAEConfig`, their V2 versions), the model is VoxCPM's own `VoxCPMModel` / `VoxCPM2Model` with
seeded random weights, and the folder holds what the hub repos hold: config.json, the weights
(model.safetensors, or pytorch_model.bin as VoxCPM-0.5B ships), the AudioVAE (audiovae.pth or
audiovae.safetensors) and a tokenizer (tokenizer.json, a character-level LlamaTokenizerFast).

    write_tiny_voxcpm(tmp_path / "v1", weights="bin")     # VoxCPM-0.5B: pytorch_model.bin + audiovae.pth
    write_tiny_voxcpm(tmp_path / "v15", generation="1.5") # VoxCPM1.5: 44.1 kHz, patches of 4
    write_tiny_voxcpm(tmp_path / "v2", arch="voxcpm2")    # VoxCPM2: 16 kHz in, 48 kHz out

Rates are scaled with the widths for 0.5B and 2: the AudioVAE hops 80 samples (200 latent frames a
second at 16 kHz), so a 0.1 s clip is 20 frames, 10 patches of 2. VoxCPM1.5 keeps its real
AudioVAE layout (`V15`: 44.1 kHz, encoder rates 2-3-6-7-7, a hop of 1764 samples, 25 latent frames
a second, patches of 4 at 6.25 Hz), with tiny widths.
"""

import json
import string
from pathlib import Path

HOP_RATES = [4, 4, 5]  # encoder: 80 samples a latent frame
FEAT_DIM = 8  # latent_dim == feat_dim
# What VoxCPM1.5's config.json sets otherwise than VoxCPM-0.5B (its "architecture" is "voxcpm" too),
# as openbmb/VoxCPM1.5 ships it (mlx-audio's VoxCPM config and llama.cpp-omni's VoxCPM notes agree):
# patch_size 4, audio_vae_config {sample_rate 44100, encoder_rates [2, 3, 6, 7, 7], decoder_rates
# [7, 7, 6, 3, 2], decoder_dim 2048, latent_dim 64}, residual_lm 8 layers, encoder and DiT 8 layers.
V15 = {
    "patch_size": 4,
    "sample_rate": 44100,
    "encoder_rates": [2, 3, 6, 7, 7],
    "decoder_rates": [7, 7, 6, 3, 2],
}


def _tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in string.printable[:95]:
        vocab.setdefault(c, len(vocab))
    while len(vocab) < 112:  # VoxCPM's audio tokens 101-104 must be in range
        vocab[f"<extra_{len(vocab)}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return LlamaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ), len(vocab)


def tiny_config(arch: str = "voxcpm", generation: str | None = None):
    """A VoxCPM config object (VoxCPM's own pydantic class) with every width scaled down.

    ``generation`` "1.5": VoxCPM1.5's rates and patch size (`V15`) on the "voxcpm" architecture.
    """
    from voxlora.families.voxcpm.runtime import classes

    k = classes(arch)
    from voxcpm.modules.locdit import CfmConfig
    from voxcpm.modules.minicpm4 import MiniCPM4Config

    lm = MiniCPM4Config(
        bos_token_id=1,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=64,
        max_position_embeddings=512,
        num_attention_heads=4,
        num_hidden_layers=2,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        rope_scaling={
            "type": "longrope",
            "long_factor": [1.0] * 4,
            "short_factor": [1.0] * 4,
            "original_max_position_embeddings": 512,
        },
        vocab_size=112,
        use_mup=False,
        scale_emb=12,
        dim_model_base=256,
        scale_depth=1.4,
        rope_theta=10000,
    )
    vae = dict(encoder_dim=4, encoder_rates=HOP_RATES, latent_dim=FEAT_DIM, decoder_dim=16)
    patch = 2
    if arch == "voxcpm2":
        vae |= dict(decoder_dim=32, decoder_rates=[5, 4, 4, 3], out_sample_rate=48000, cond_dim=8)
    elif generation == "1.5":
        vae |= dict(decoder_dim=32, **{k: V15[k] for k in ("sample_rate", "encoder_rates", "decoder_rates")})
        patch = V15["patch_size"]
    else:
        vae |= dict(decoder_rates=[5, 4, 4])
    return k.config(
        lm_config=lm,
        patch_size=patch,
        feat_dim=FEAT_DIM,
        residual_lm_num_layers=1,
        scalar_quantization_latent_dim=16,
        encoder_config=k.encoder_config(hidden_dim=16, ffn_dim=32, num_heads=2, num_layers=1),
        dit_config=k.dit_config(
            hidden_dim=16, ffn_dim=32, num_heads=2, num_layers=2, cfm_config=CfmConfig(inference_cfg_rate=2.0)
        ),
        audio_vae_config=k.vae_config(**vae),
        max_length=512,
        device="cpu",
        dtype="float32",
    )


def write_tiny_voxcpm(
    path, arch: str = "voxcpm", weights: str = "safetensors", vae: str = "pth", seed: int = 0,
    generation: str | None = None,
) -> Path:  # fmt: skip
    """A tiny VoxCPM folder. ``weights``: safetensors | bin; ``vae``: pth | safetensors;
    ``generation`` "1.5": VoxCPM1.5's layout (model.safetensors + audiovae.pth, as it ships)."""
    import torch
    from safetensors.torch import save_file
    from voxlora.families.voxcpm.runtime import classes, quiet

    k = classes(arch)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = tiny_config(arch, generation)
    tokenizer, _ = _tokenizer()
    torch.manual_seed(seed)
    with quiet():
        model = k.model(config, tokenizer, k.vae(config.audio_vae_config), None, device="cpu")
    with torch.no_grad():  # VoxCPM zero-initialises some layers; make every weight matter
        for name, p in model.named_parameters():
            if not name.startswith("audio_vae.") and not name.endswith("norm.weight"):
                p.copy_(torch.randn_like(p) * 0.1)
    state = model.state_dict()
    vae_state = {
        n.removeprefix("audio_vae."): t.contiguous() for n, t in state.items() if n.startswith("audio_vae.")
    }
    lm_state = {n: t.contiguous() for n, t in state.items() if not n.startswith("audio_vae.")}
    data = json.loads(config.model_dump_json(exclude_none=True))
    data["architecture"] = arch
    data["device"], data["dtype"] = "cuda", "bfloat16"  # as the hub's configs say
    (path / "config.json").write_text(json.dumps(data, indent=2) + "\n")
    if weights == "bin":
        torch.save(lm_state, path / "pytorch_model.bin")
    else:
        save_file(lm_state, path / "model.safetensors")
    if vae == "safetensors":
        save_file(vae_state, path / "audiovae.safetensors")
    else:
        torch.save({"state_dict": vae_state}, path / "audiovae.pth")
    tokenizer.save_pretrained(path)
    return path
