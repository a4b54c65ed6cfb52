from .info_nce import info_nce, moco_info_nce, pair_similarity

__all__ = ['info_nce', 'moco_info_nce', 'pair_similarity']
