"""Dense (1x1-conv) projector of PLRC: MoCo v2's MLP applied at every feature-map location."""
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS


@MODELS.register_module()
class PLRCDenseNeck(BaseModule):
    """MoCo v2's projector ``Linear -> ReLU -> Linear`` converted into 1x1 convolutions.

    PLRC (Sec. 3.2, footnote 1) keeps the spatial dimensions "all the way till the output" and
    converts the MoCo v2 MLP into 1x1 convolutions; a 1x1 convolution is exactly the linear
    layer applied at every location, so the output map is a per-location embedding.

    Args:
        in_channels (int): Channels of the (last) backbone feature map, 2048 for R50.
        hid_channels (int): Hidden channels, 2048 as in MoCo v2.
        out_channels (int): Embedding dimension, 128 as in MoCo v2.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        self.mlp = nn.Sequential(nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hid_channels, out_channels, 1))

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor]:
        """Project the last feature map.

        Args:
            x (Tensor | Sequence[Tensor]): ``(B, C, H, W)`` or backbone outputs (the last one
                is used).

        Returns:
            tuple[Tensor]: ``((B, out_channels, H, W),)``.
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        return (self.mlp(x), )
