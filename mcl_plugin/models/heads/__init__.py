from .conv_tile_head import ConvTileHead
from .multilevel_cls_head import MultiLevelClsHead
from .multilevel_contrastive_head import (MultiLevelContrastiveHead, per_image_mean,
                                          target_levels)

__all__ = ['ConvTileHead', 'MultiLevelClsHead', 'MultiLevelContrastiveHead', 'per_image_mean', 'target_levels']
from .plrc_head import PLRCHead, point_affinity_distillation  # noqa: E402
__all__ += ['PLRCHead', 'point_affinity_distillation']
from .detco_head import DetCoHead, moco_info_nce  # noqa: E402
__all__ += ['DetCoHead', 'moco_info_nce']
from .soco_head import ConvFCRoIHead  # noqa: E402
__all__ += ['ConvFCRoIHead']
