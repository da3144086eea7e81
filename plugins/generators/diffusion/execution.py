"""The switches that decide how the score network's arithmetic runs: TF32, determinism, attention.

They are process-wide torch flags, so :func:`numerics` sets them only for the duration of a fit
or a sample and restores them afterwards: one generator's choice never leaks into the next job
of the same process. bf16 autocast is applied where the network is called (``score.Score``), so
that the SDE's own arithmetic stays in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ehrbench_plugins.generators.diffusion.options import ExecutionOptions


def _math_attention() -> contextlib.AbstractContextManager:
    """Scaled-dot-product attention on its math kernel, whose backward has no atomics."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3: no kernel selection; CPU kernels are deterministic anyway
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


@contextlib.contextmanager
def numerics(options: ExecutionOptions | None, device: str | torch.device) -> Iterator[None]:
    """Apply ``options``' TF32 and determinism switches inside the block, then restore torch's."""
    options = options or ExecutionOptions()
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    try:
        if options.tf32 != "torch":
            matmul.allow_tf32 = cudnn.allow_tf32 = options.tf32 == "on"
        if options.deterministic:
            cudnn.deterministic, cudnn.benchmark = True, False
        on_cuda = torch.device(device).type == "cuda"
        with _math_attention() if options.deterministic and on_cuda else contextlib.nullcontext():
            yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision == 'bfloat16'``, else nothing.

    The cast weights are not cached: a cache is not allowed while a CUDA graph is captured, and
    re-casting 25 M weights per call is small next to a batch of thousands of records.
    """
    if precision == "bfloat16":
        return torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
