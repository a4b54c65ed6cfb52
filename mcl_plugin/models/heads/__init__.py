from .conv_tile_head import ConvTileHead
from .multilevel_cls_head import MultiLevelClsHead
from .multilevel_contrastive_head import (MultiLevelContrastiveHead, per_image_mean,
                                          target_levels)

__all__ = ['ConvTileHead', 'MultiLevelClsHead', 'MultiLevelContrastiveHead', 'per_image_mean', 'target_levels']
from .plrc_head import PLRCHead, point_affinity_distillation  # noqa: E402
__all__ += ['PLRCHead', 'point_affinity_distillation']
from .detco_head import DetCoHead  # noqa: E402
__all__ += ['DetCoHead']
from .soco_head import ConvFCRoIHead, SoCoHead  # noqa: E402
__all__ += ['ConvFCRoIHead', 'SoCoHead']
