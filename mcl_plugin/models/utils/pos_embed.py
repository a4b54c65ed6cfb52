"""Positional embeddings added to the stride-4 stem feature (MCL App. A.1), pre-training only."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS


def _check_channels(channels: int, multiple: int, name: str) -> None:
    if channels % multiple:
        raise ValueError(f'{name} needs a channel count divisible by {multiple}, got {channels}')


def sincos_1d(length: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """``(length, dim)`` table: ``PE(p, 2i) = sin(w_i p)``, ``PE(p, 2i+1) = cos(w_i p)``,
    ``w_i = 1 / 10000**(2i / dim)``, ``p`` = cell index on the stem map."""
    _check_channels(dim, 2, 'sincos_1d')
    pos = torch.arange(length, device=device, dtype=torch.float64)
    omega = 1.0 / 10000**(torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)
    angles = pos[:, None] * omega[None]
    table = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)
    return table.to(dtype)


def _xy_to_map(x_table: Tensor, y_table: Tensor) -> Tensor:
    """Broadcast per-column ``(W, d)`` and per-row ``(H, d)`` tables to ``(2d, H, W)``:
    the first ``d`` channels carry the x embedding, the last ``d`` the y embedding."""
    W, H = x_table.shape[0], y_table.shape[0]
    x = x_table.t()[:, None, :].expand(-1, H, W)
    y = y_table.t()[:, :, None].expand(-1, H, W)
    return torch.cat([x, y], dim=0)


@MODELS.register_module()
class SinCosStemEmbedding(BaseModule):
    """SPE: fixed sinusoidal x/y embedding (``d = C/2`` channels per axis), added to the map.

    Computed on the montage canvas (absolute positions), so a tile's embedding differs by a
    rotation from its neighbour's (paper Eq. 4). No parameters.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        _check_channels(channels, 4, 'SPE')
        self.channels = channels

    def embedding(self, H: int, W: int, device=None, dtype=torch.float32) -> Tensor:
        d = self.channels // 2
        return _xy_to_map(sincos_1d(W, d, device, dtype), sincos_1d(H, d, device, dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.embedding(x.shape[-2], x.shape[-1], x.device, x.dtype)[None]


@MODELS.register_module()
class CartesianGridStemEmbedding(BaseModule):
    """CSG: the ``(x, y)`` grid scaled linearly to ``[-1, 1]``, repeated along channels as
    ``x, y, x, y, ...`` up to ``C`` and added. No parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        _check_channels(channels, 2, 'CSG')
        self.channels = channels

    def embedding(self, H: int, W: int, device=None, dtype=torch.float32) -> Tensor:
        ys = torch.linspace(-1, 1, H, device=device, dtype=dtype)
        xs = torch.linspace(-1, 1, W, device=device, dtype=dtype)
        grid = torch.stack([xs[None, :].expand(H, W), ys[:, None].expand(H, W)])
        return grid.repeat(self.channels // 2, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.embedding(x.shape[-2], x.shape[-1], x.device, x.dtype)[None]


@MODELS.register_module()
class LearnableStemEmbedding(BaseModule):
    """LPE: learnable x and y tables of ``C/2``-d vectors, looked up by cell coordinate and
    concatenated. Tables are sized for ``size`` cells and linearly resized for other maps.

    Args:
        channels (int): Stem channels ``C``.
        size (int): Table length (56 for 224-px inputs of a ResNet stem).
    """

    def __init__(self, channels: int, size: int = 56, init_std: float = 0.02) -> None:
        super().__init__()
        _check_channels(channels, 2, 'LPE')
        self.channels = channels
        self.x_embed = nn.Parameter(torch.zeros(size, channels // 2))
        self.y_embed = nn.Parameter(torch.zeros(size, channels // 2))
        nn.init.trunc_normal_(self.x_embed, std=init_std)
        nn.init.trunc_normal_(self.y_embed, std=init_std)

    @staticmethod
    def _resize(table: Tensor, length: int) -> Tensor:
        if table.shape[0] == length:
            return table
        return F.interpolate(table.t()[None], size=length, mode='linear',
                             align_corners=True)[0].t()

    def embedding(self, H: int, W: int) -> Tensor:
        return _xy_to_map(self._resize(self.x_embed, W), self._resize(self.y_embed, H))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.embedding(x.shape[-2], x.shape[-1]).to(x.dtype)[None]


STEM_EMBEDDINGS = dict(
    spe='SinCosStemEmbedding', csg='CartesianGridStemEmbedding', lpe='LearnableStemEmbedding')


def build_stem_embedding(cfg: Optional[dict], channels: int) -> Optional[nn.Module]:
    """Build a stem embedding from ``dict(type='spe'|'csg'|'lpe'|'none'|<registered name>)``."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop('type')
    if str(kind).lower() == 'none':
        return None
    kind = STEM_EMBEDDINGS.get(str(kind).lower(), kind)
    return MODELS.build(dict(type=kind, channels=channels, **cfg))
