from .gather import all_gather_with_grad, rank_offset
from .montage import MontageAssembler, MontageBatch, assemble_montage, downsample
from .pos_embed import (CartesianGridStemEmbedding, LearnableStemEmbedding,
                        SinCosStemEmbedding, build_stem_embedding, sincos_1d)
from .tile_pool import TilePooler, montage_level_to_feature

__all__ = [
    'all_gather_with_grad', 'rank_offset', 'MontageAssembler', 'MontageBatch',
    'assemble_montage', 'downsample', 'CartesianGridStemEmbedding', 'LearnableStemEmbedding',
    'SinCosStemEmbedding', 'build_stem_embedding', 'sincos_1d', 'TilePooler',
    'montage_level_to_feature'
]
from .queue import NegativeQueue  # noqa: E402
__all__ += ['NegativeQueue']
