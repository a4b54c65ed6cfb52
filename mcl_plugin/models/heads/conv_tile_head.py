"""The shared 4-conv tile head, key-compatible with mmdet ``Shared4Conv1FCBBoxHead``."""
from typing import Optional

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS


@MODELS.register_module()
class ConvTileHead(BaseModule):
    """``num_convs`` x (3x3 conv + norm + ReLU) shared across levels, no fc.

    Its parameters are named ``shared_convs.{i}.conv`` / ``.bn`` (``.gn`` for GroupNorm), the
    names of mmdet's ``Shared4Conv1FCBBoxHead.shared_convs``, so the hand-off to Mask R-CNN's box
    head is a prefix rename. Output keeps the spatial size; callers average-pool it.

    Args:
        in_channels (int): Input channels. Defaults to 256.
        conv_channels (int): Channels of every conv. Defaults to 256.
        num_convs (int): Number of convs. Defaults to 4.
        norm_cfg (dict, optional): Norm layer. Defaults to BN.
    """

    def __init__(self,
                 in_channels: int = 256,
                 conv_channels: int = 256,
                 num_convs: int = 4,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 init_cfg: Optional[dict] = dict(type='Kaiming', layer='Conv2d')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.shared_convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_channels, conv_channels, 3, padding=1,
                       norm_cfg=norm_cfg) for i in range(num_convs))

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.shared_convs:
            x = conv(x)
        return x
