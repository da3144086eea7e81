"""Choosing the compute device: ``auto`` means CUDA when torch sees one, else the CPU."""

from __future__ import annotations

import importlib.util
import subprocess

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


def nvidia_driver_version() -> str | None:
    """The NVIDIA driver's version, from NVML (pynvml) or else nvidia-smi; None when neither answers."""
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return out.splitlines()[0].strip() or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def describe_device(device: str) -> dict[str, str]:
    """What the manifest records about the device: on CUDA the GPU, its memory, capability and driver."""
    info = {"device": device}
    if device.startswith("cuda"):
        import torch

        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info["cuda_device_name"] = props.name
        info["torch_cuda"] = str(torch.version.cuda)
        info["cuda_capability"] = f"{props.major}.{props.minor}"
        info["cuda_memory_gib"] = f"{props.total_memory / 2**30:.1f}"
        info["cuda_devices"] = str(torch.cuda.device_count())
        info["nvidia_driver"] = nvidia_driver_version() or "unknown"
    return info
