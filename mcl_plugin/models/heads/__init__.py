from .conv_tile_head import ConvTileHead
from .multilevel_contrastive_head import (MultiLevelContrastiveHead, per_image_mean,
                                          target_levels)

__all__ = ['ConvTileHead', 'MultiLevelContrastiveHead', 'per_image_mean', 'target_levels']
