from .ema import MomentumEncoder
from .gather import all_gather_with_grad, rank_offset
from .montage import (MontageAssembler, MontageBatch, assemble_montage, downsample,
                      joint_montages)
from .pos_embed import (CartesianGridStemEmbedding, LearnableStemEmbedding,
                        SinCosStemEmbedding, build_stem_embedding, sincos_1d)
from .tile_pool import TilePooler, montage_level_to_feature

__all__ = [
    'MomentumEncoder', 'all_gather_with_grad', 'rank_offset', 'MontageAssembler', 'MontageBatch',
    'assemble_montage', 'downsample', 'joint_montages', 'CartesianGridStemEmbedding',
    'LearnableStemEmbedding', 'SinCosStemEmbedding', 'build_stem_embedding', 'sincos_1d',
    'TilePooler', 'montage_level_to_feature'
]
from .queue import NegativeQueue  # noqa: E402
__all__ += ['NegativeQueue']
from .roi_pool import (SOCO_SCALE_THRESHOLDS, MultiLevelRoIPooler,  # noqa: E402
                       assign_levels_by_scale, boxes_to_rois, roi_align_cfg)
__all__ += ['SOCO_SCALE_THRESHOLDS', 'MultiLevelRoIPooler', 'assign_levels_by_scale',
            'boxes_to_rois', 'roi_align_cfg']
from .pyramid import pyramid_outputs  # noqa: E402
__all__ += ['pyramid_outputs']
