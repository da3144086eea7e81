"""DP-SGD through Opacus (the optional ``ehrbench[dp]`` extra), imported only when ``dp = true``.

Training samples each batch by Poisson sampling (every record joins with probability
q = 1 / ⌈n / batch_size⌉), clips each record's gradient to ``max_grad_norm`` and adds Gaussian
noise of standard deviation σ · max_grad_norm; σ is the smallest multiplier whose RDP accountant
reaches ``target_epsilon`` at ``delta`` after the planned steps. The guarantee reported is the
accountant's ε after the steps actually taken, for the same δ: what Opacus itself would print.

Clipping uses Opacus' ghost clipping: each record's gradient norm comes from its activations and
output gradients (exact for linear layers on vectors), then a second backward pass takes the
clipped sum, without materialising a gradient per record. The same mechanism and the same
guarantee as per-record clipping, about 30 times faster on the quick networks (0.044 s against
1.33 s a step of 256 records × 1,071 codes on one CPU thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACCOUNTANT = "rdp"  # Rényi DP, as SynthVAE's code (its alphas are Opacus' defaults since 1.0)
EXTRA_HINT = "pip install 'ehrbench[dp]' (Opacus)"
# Opacus notes when the best Rényi order is its largest: the bound is valid, a wider range could only tighten it.
ALPHA_WARNING = "Optimal order is the largest alpha"


class MissingExtra(ImportError):
    """``dp = true`` without Opacus installed."""


def require_opacus() -> Any:
    """The ``opacus`` module, or an error that names the extra to install."""
    try:
        import opacus
    except ImportError:
        raise MissingExtra(
            f"dp = true needs Opacus, which is not installed: {EXTRA_HINT}, or set dp = false."
        ) from None
    return opacus


@dataclass
class PrivateTraining:
    """The Opacus-wrapped module, optimizer and Poisson-sampling loader, and how to read ε."""

    module: Any
    optimizer: Any
    loader: Any
    engine: Any
    delta: float

    @property
    def noise_multiplier(self) -> float:
        return float(self.optimizer.noise_multiplier)

    def epsilon(self) -> float:
        """ε spent so far at this δ, from the engine's accountant."""
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=ALPHA_WARNING)
            return float(self.engine.get_epsilon(self.delta))

    def backward(self, per_record_loss: Any) -> None:
        """Ghost clipping's two backward passes for the batch's per-record losses (mean reduction)."""
        from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

        DPTensorFastGradientClipping(self.module, self.optimizer, per_record_loss, "mean").backward()

    def history(self) -> list[tuple[float, float, int]]:
        """The accountant's (noise multiplier, sample rate, steps) entries."""
        return [tuple(h) for h in self.engine.accountant.history]  # type: ignore[misc]


def make_private(module: Any, optimizer: Any, loader: Any, *, target_epsilon: float, delta: float, epochs: int,
                 max_grad_norm: float, noise_generator: Any) -> PrivateTraining:
    """Wrap a model for DP-SGD at (``target_epsilon``, ``delta``) over ``epochs`` passes of ``loader``.

    ``loader``'s own ``torch.Generator`` draws the Poisson batches and ``noise_generator`` the
    gradient noise, so a DP fit is reproducible from its seed (Opacus' secure mode is off: its
    cryptographic generator cannot be seeded).
    """
    require_opacus()
    import warnings

    import torch
    from opacus import PrivacyEngine

    with warnings.catch_warnings():  # Opacus warns that secure mode is off; that is the reproducible choice
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message=ALPHA_WARNING)
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        # criterion: Opacus wraps one for ghost clipping; the loop calls :meth:`PrivateTraining.backward` instead.
        module, optimizer, _, loader = engine.make_private_with_epsilon(
            module=module, optimizer=optimizer, criterion=torch.nn.MSELoss(), data_loader=loader,
            target_epsilon=target_epsilon, target_delta=delta, epochs=epochs, max_grad_norm=max_grad_norm,
            noise_generator=noise_generator, poisson_sampling=True, grad_sample_mode="ghost",
        )
    return PrivateTraining(module, optimizer, loader, engine, delta)
