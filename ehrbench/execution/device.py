"""Choosing the compute device: ``auto`` means CUDA when torch sees one, else the CPU."""

from __future__ import annotations

import importlib.util

from ehrbench.errors import ConfigError


def resolve_device(requested: str, needs_torch: bool) -> str:
    """The device a run uses; asking for CUDA where there is none is a user error.

    torch is imported only when a selected generator uses it, keeping CPU-only runs light.
    """
    if requested == "cpu" or (requested == "auto" and not needs_torch):
        return "cpu"
    if importlib.util.find_spec("torch") is None:
        if requested == "cuda":
            raise ConfigError("--device cuda needs PyTorch, which is not installed.")
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise ConfigError(
            "--device cuda was asked for, but torch.cuda.is_available() is False on this machine "
            f"(torch {torch.__version__}). Use --device auto or cpu."
        )
    return "cpu"


def describe_device(device: str) -> dict[str, str]:
    """What the manifest records about the device (the GPU's name when CUDA is used)."""
    info = {"device": device}
    if device.startswith("cuda"):
        import torch

        info["cuda_device_name"] = torch.cuda.get_device_name(0)
        info["torch_cuda"] = str(torch.version.cuda)
    return info
