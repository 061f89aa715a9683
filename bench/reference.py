"""The reference trainer: the fine-tuning recipe of transformers' CSM documentation.

Each step, `CsmProcessor.apply_chat_template(..., output_labels=True)` builds the batch from raw
audio (so Mimi encodes every clip on every step, inside the model's forward), the model is
`CsmForConditionalGeneration` wrapped by peft with the same LoRA config as voxlora's, and the loop
is plain AdamW. This is what a user would otherwise run; voxlora is measured against it.
"""

import torch


def conversation(text: str, audio, speaker: int = 0) -> list[dict]:
    return [
        {"role": str(speaker), "content": [{"type": "text", "text": text}, {"type": "audio", "audio": audio}]}
    ]


def make_reference(model_path: str, targets: list[str], rank: int, alpha: float, lr: float = 5e-4):
    """Model + processor + optimizer as the documentation's recipe builds them.

    ``targets``: peft's ``target_modules`` (pass voxlora's full module names for the same adapter).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, CsmForConditionalGeneration

    processor = AutoProcessor.from_pretrained(model_path)
    model = CsmForConditionalGeneration.from_pretrained(model_path)
    model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    return model, processor, optimizer


def reference_step(model, processor, optimizer, clips, decoder_fraction: float) -> float:
    """One training step on ``clips`` (list of (text, audio_24k_float32, speaker)); returns the loss."""
    conversations = [conversation(text, audio, speaker) for text, audio, speaker in clips]
    inputs = processor.apply_chat_template(
        conversations,
        tokenize=True,
        return_dict=True,
        output_labels=True,
        depth_decoder_labels_ratio=decoder_fraction,
    )
    loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()
