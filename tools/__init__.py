"""The commands: one thin module per tool, installed as `voxlora.cli.<tool>`."""
