"""The DDPM-style UNet score network (Ho et al. 2020, as used by ScoEHR) on a 1×H×H image.

A flat input of size H² is viewed as one channel of H×H. Levels of residual blocks with
channel multipliers, stride-2 conv downsampling between levels, nearest-×2 upsampling + conv
on the way up with skip concatenations, a middle block of residual, self-attention, residual.
Time enters as a sinusoidal embedding of t (width = base channels) → Linear 4·C → SiLU →
Linear 4·C, projected and added per channel in every residual block. The output conv and the
second conv of each residual block start near zero, so the untrained network outputs ≈ 0.
The paper configuration (C = 128, (1, 2, 2), 2 blocks, attention at 16) has 24.5 M parameters
at H = 12. For CPU profiles ``patch_size`` p > 1 folds p×p pixel patches into channels
(pixel-unshuffle in, pixel-shuffle out), so a 36×36 record runs at 6×6 with 36 input channels.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ehrbench_plugins.generators.diffusion.options import UNetConfig

_NEAR_ZERO = 1e-10


def _init(layer: nn.Conv2d | nn.Linear, scale: float = 1.0) -> nn.Module:
    """Variance-scaling (fan-average, uniform) weights and zero bias, as in DDPM."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    bound = math.sqrt(3.0 * scale / max(1.0, (fan_in + fan_out) / 2))
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()
    return layer


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, scale: float = 1.0) -> nn.Module:
    return _init(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2), scale)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (continuous) times ``t`` of shape (batch,): sin and cos halves."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / max(half - 1, 1) * torch.arange(half, device=t.device, dtype=torch.float32))
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = _conv(cin, cout)
        self.temb_proj = _init(nn.Linear(temb, cout))
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv(cout, cout, scale=_NEAR_ZERO)
        self.shortcut = _conv(cin, cout, kernel=1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class SelfAttention(nn.Module):
    """Single-head attention over the H·W positions, residual."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.q, self.k, self.v = (_conv(channels, channels, kernel=1) for _ in range(3))
        self.out = _conv(channels, channels, kernel=1, scale=_NEAR_ZERO)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (proj(y).flatten(2).transpose(1, 2) for proj in (self.q, self.k, self.v))
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √C) v
        return x + self.out(attended.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """s_θ(x, t): flat inputs (batch, H²) and times (batch,) → flat scores (batch, H²)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        problem = config.problem()
        if problem:
            raise ValueError(f"score network: {problem}")
        self.config = config
        self.channels_last = False  # set with use_channels_last(): NHWC feature maps and weights
        ch, groups, drop = config.channels, config.groups, config.dropout
        temb = 4 * ch
        self.temb = nn.Sequential(_init(nn.Linear(ch, temb)), nn.SiLU(), _init(nn.Linear(temb, temb)))
        pixels = config.patch_size**2
        self.conv_in = _conv(pixels, ch)

        res = config.inner_height
        skips = [ch]
        cin = ch
        self.down = nn.ModuleList()
        for level, mult in enumerate(config.multipliers):
            cout = ch * mult
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks):
                blocks.append(self._block(cin, cout, temb, res))
                skips.append(cout)
                cin = cout
            stage = nn.Module()
            stage.blocks = blocks
            stage.downsample = _conv(cout, cout, stride=2) if level < len(config.multipliers) - 1 else None
            if stage.downsample is not None:
                skips.append(cout)
                res //= 2
            self.down.append(stage)

        self.mid = nn.ModuleList([
            ResidualBlock(cin, cin, temb, groups, drop), SelfAttention(cin, groups), ResidualBlock(cin, cin, temb, groups, drop)
        ])

        self.up = nn.ModuleList()
        for level in reversed(range(len(config.multipliers))):
            cout = ch * config.multipliers[level]
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks + 1):
                blocks.append(self._block(cin + skips.pop(), cout, temb, res))
                cin = cout
            stage = nn.Module()
            stage.blocks = blocks
            stage.upsample = _conv(cout, cout) if level > 0 else None
            if stage.upsample is not None:
                res *= 2
            self.up.append(stage)
        assert not skips
        self.norm_out = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv_out = _conv(cin, pixels, scale=_NEAR_ZERO)

    def _block(self, cin: int, cout: int, temb: int, resolution: int) -> nn.ModuleList:
        """A residual block, followed by self-attention when this resolution asks for it."""
        parts = [ResidualBlock(cin, cout, temb, self.config.groups, self.config.dropout)]
        if resolution in self.config.attention_resolutions:
            parts.append(SelfAttention(cout, self.config.groups))
        return nn.ModuleList(parts)

    @staticmethod
    def _run_block(block: nn.ModuleList, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, temb)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        side = self.config.height
        temb = self.temb(timestep_embedding(t.reshape(-1), self.config.channels))
        image = F.pixel_unshuffle(x.reshape(-1, 1, side, side), self.config.patch_size)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        hs = [self.conv_in(image)]
        for stage in self.down:
            for block in stage.blocks:
                hs.append(self._run_block(block, hs[-1], temb))
            if stage.downsample is not None:
                hs.append(stage.downsample(hs[-1]))
        h = self._run_block(self.mid, hs[-1], temb)
        for stage in self.up:
            for block in stage.blocks:
                h = self._run_block(block, torch.cat([h, hs.pop()], dim=1), temb)
            if stage.upsample is not None:
                h = stage.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(h, self.config.patch_size).reshape(x.shape[0], -1)


def use_channels_last(net: UNet, on: bool) -> UNet:
    """Put ``net``'s weights and feature maps in NHWC (``on``) or back in NCHW; same function either way."""
    net.channels_last = on
    return net.to(memory_format=torch.channels_last if on else torch.contiguous_format)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
