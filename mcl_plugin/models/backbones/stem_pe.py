"""mmdet backbones with a pre-training-only positional embedding on the stride-4 stem feature.

The state dict is the mmdet backbone's plus ``stem_pe.*`` (only for the learnable variant), so the
hand-off to an mmdet detector is a plain copy of every other key (the converter drops
``stem_pe``): the fine-tuned detector never contains the embedding.
"""
from typing import Optional

from mmdet.models.backbones import ResNet, SwinTransformer
from torch import Tensor

from mcl_plugin.registry import MODELS

from ..utils.pos_embed import build_stem_embedding


@MODELS.register_module()
class PEResNet(ResNet):
    """mmdet ``ResNet`` that adds a stem embedding after the first max-pool.

    Args:
        stem_pos_embed (dict, optional): ``dict(type='spe' | 'csg' | 'lpe' | 'none', ...)``,
            see :mod:`mcl_plugin.models.utils.pos_embed`. ``None`` or ``'none'`` gives a plain
            ResNet.
        **kwargs: mmdet ``ResNet`` arguments.
    """

    def __init__(self, *args, stem_pos_embed: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stem_pe = build_stem_embedding(stem_pos_embed, self.stem_channels)

    def forward(self, x: Tensor) -> tuple:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        if self.stem_pe is not None:
            x = self.stem_pe(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


@MODELS.register_module()
class PESwinTransformer(SwinTransformer):
    """mmdet ``SwinTransformer`` that adds a stem embedding to the stride-4 patch embedding.

    Args:
        stem_pos_embed (dict, optional): As in :class:`PEResNet`.
        **kwargs: mmdet ``SwinTransformer`` arguments.
    """

    def __init__(self, *args, stem_pos_embed: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stem_pe = build_stem_embedding(stem_pos_embed, self.num_features[0])

    def forward(self, x: Tensor) -> list:
        x, hw_shape = self.patch_embed(x)
        if self.stem_pe is not None:
            B, L, C = x.shape
            grid = x.transpose(1, 2).reshape(B, C, *hw_shape)
            x = self.stem_pe(grid).flatten(2).transpose(1, 2)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw_shape = stage(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(
                    out.view(-1, *out_hw_shape, self.num_features[i]).permute(0, 3, 1,
                                                                             2).contiguous())
        return outs
