from .info_nce import InfoNCELoss, info_nce, pair_similarity

__all__ = ['InfoNCELoss', 'info_nce', 'pair_similarity']
