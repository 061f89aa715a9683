"""voxlora: small Unix-style commands for LoRA fine-tuning of speech-generation models.

The library holds all the logic; the commands in `voxlora.cli` only parse options and stream.
"""

__version__ = "0.1.0"
