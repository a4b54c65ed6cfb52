"""DetCo's per-stage global and local MLP heads."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.necks import MoCoV2Neck
from torch import Tensor, nn

from mcl_plugin.registry import MODELS


@MODELS.register_module()
class DetCoNeck(BaseModule):
    """Non-shared global and local MoCo v2 MLP heads on every backbone stage.

    For stage ``i`` with ``C_i`` channels:

    * global head ``mlp_global^i``: global average pooling, then MoCo v2's
      ``Linear(C_i, hid) -> ReLU -> Linear(hid, out)`` (mmpretrain ``MoCoV2Neck``);
    * local head ``mlp_local^i``: every patch is average-pooled, the ``num_patches`` pooled
      vectors of an image are concatenated in patch order (``num_patches * C_i``) and go through
      ``Linear(num_patches * C_i, hid) -> ReLU -> Linear(hid, out)``.

    DetCo says "same as MoCo v2 except the input channel" and does not give the widths. The
    class defaults are a fixed ``hid=2048``, ``out=128`` for every head (also the local heads,
    whose input is 9x wider); ``'in'`` makes the hidden width the head's input width, as in
    MoCo v2 (2048 -> 2048 -> 128) and in the public DetCo code (``C_i -> C_i`` global,
    ``9 C_i -> 9 C_i`` local; the paper-size configs).

    Args:
        in_channels (Sequence[int]): Channels of the stages. Defaults to ResNet-50's
            ``(256, 512, 1024, 2048)``.
        hid_channels (int | str): Hidden width of the global heads, or ``'in'`` for their input
            width ``C_i``. Defaults to 2048.
        local_hid_channels (int | str, optional): Hidden width of the local heads, or ``'in'``
            for their input width ``num_patches * C_i``. Defaults to None (``hid_channels``).
        out_channels (int): Embedding width. Defaults to 128.
        num_patches (int): Patches per local set (3x3 jigsaw: 9).
        with_local (bool): Build the local heads (False for the HIC-only ablation).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 hid_channels: Union[int, str] = 2048,
                 out_channels: int = 128,
                 num_patches: int = 9,
                 with_local: bool = True,
                 local_hid_channels: Optional[Union[int, str]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = tuple(in_channels)
        self.num_patches = num_patches
        self.out_channels = out_channels
        local_hid = hid_channels if local_hid_channels is None else local_hid_channels
        self.global_heads = nn.ModuleList(
            MoCoV2Neck(c, _width(hid_channels, c), out_channels, with_avg_pool=True)
            for c in self.in_channels)
        self.local_heads = nn.ModuleList(
            MoCoV2Neck(num_patches * c, _width(local_hid, num_patches * c), out_channels,
                       with_avg_pool=False) for c in self.in_channels) if with_local else None

    @property
    def num_stages(self) -> int:
        return len(self.in_channels)

    def forward_global(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """``(N, out)`` global embeddings from the ``(N, C_i, H_i, W_i)`` stage maps."""
        self._check(feats)
        return [head([x])[0] for head, x in zip(self.global_heads, feats)]

    def forward_local(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """``(N, out)`` local embeddings from patch stage maps.

        Args:
            feats: ``(N * num_patches, C_i, h_i, w_i)`` per stage, sample-major (row
                ``n * num_patches + p`` is patch ``p`` of image ``n``).
        """
        if self.local_heads is None:
            raise RuntimeError('DetCoNeck(with_local=False) has no local heads')
        self._check(feats)
        out = []
        for head, x in zip(self.local_heads, feats):
            if x.shape[0] % self.num_patches:
                raise ValueError(f'{x.shape[0]} patch features are not a multiple of '
                                 f'num_patches={self.num_patches}')
            pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
            out.append(head([pooled.reshape(-1, self.num_patches * x.shape[1])])[0])
        return out

    def forward(self,
                global_feats: Sequence[Tensor],
                patch_feats: Optional[Sequence[Tensor]] = None
                ) -> Tuple[List[Tensor], Optional[List[Tensor]]]:
        """Global embeddings and, when ``patch_feats`` is given, local embeddings."""
        local = self.forward_local(patch_feats) if patch_feats is not None else None
        return self.forward_global(global_feats), local

    def _check(self, feats: Sequence[Tensor]) -> None:
        channels = tuple(int(x.shape[1]) for x in feats)
        if channels != self.in_channels:
            raise ValueError(f'DetCoNeck expects stage channels {self.in_channels}, got '
                             f'{channels}; set the backbone out_indices=(0, 1, 2, 3) and '
                             'in_channels to match the backbone')


def _width(hid: Union[int, str], in_channels: int) -> int:
    """A hidden width: an int, or ``'in'`` for the input width."""
    if hid == 'in':
        return in_channels
    if isinstance(hid, str) or hid < 1:
        raise ValueError(f"a hidden width is a positive int or 'in', got {hid!r}")
    return int(hid)


def stack_patches(patches: Sequence[Tensor]) -> Tensor:
    """Stack ``P`` patch tensors ``(N, C, h, w)`` into one sample-major ``(N * P, C, h, w)``."""
    return torch.stack(list(patches), dim=1).flatten(0, 1)
