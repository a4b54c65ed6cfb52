"""Feature pyramid for the non-FPN (C4) variant: resize the single-level feature (MCL §3.2)."""
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS


@MODELS.register_module()
class InterpolatedPyramid(BaseModule):
    """Builds a pyramid by bilinear resizing of one backbone feature; no parameters.

    Args:
        scale_factors (Sequence[float]): Resize factor of each output relative to the input
            feature, e.g. ``(1, 2, 4, 8)`` turns a stride-16 C4 map into strides 16/8/4/2 so
            that montage level ``s`` (tiles ``2**s`` times smaller) covers as many cells as a
            full image does on C4.
        in_index (int): Which backbone output to use. Defaults to -1.
    """

    def __init__(self, scale_factors: Sequence[float] = (1, 2, 4, 8), in_index: int = -1) -> None:
        super().__init__()
        self.scale_factors = list(scale_factors)
        self.in_index = in_index

    def level(self, inputs: Sequence[Tensor], index: int) -> Tensor:
        """Output ``index`` alone (the others are not computed)."""
        x, f = inputs[self.in_index], self.scale_factors[index]
        return x if f == 1 else F.interpolate(x, scale_factor=f, mode='bilinear',
                                              align_corners=False)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        return tuple(self.level(inputs, i) for i in range(len(self.scale_factors)))
