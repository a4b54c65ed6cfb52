"""Multi-level InfoNCE over montage tiles (MCL §3.3, Fig. 3)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

from ..losses.info_nce import info_nce, pair_similarity
from ..utils.gather import all_gather_with_grad, rank_offset

LOSS_MODES = ('a', 'b', 'c', 'd')


def target_levels(mode: str, level: int, num_levels: int) -> List[int]:
    """Target levels the online tiles of ``level`` are contrasted with (Fig. 3).

    ``a``: the largest (level-0) view; ``b``: the same level; ``c``: the adjacent coarser level
    (level 0 keeps itself); ``d``: every level (dense matching, terms averaged).
    """
    if mode == 'a':
        return [0]
    if mode == 'b':
        return [level]
    if mode == 'c':
        return [max(level - 1, 0)]
    if mode == 'd':
        return list(range(num_levels))
    raise ValueError(f'loss_mode must be one of {LOSS_MODES}, got {mode!r}')


def per_image_mean(x: Tensor, src: Tensor, num_images: int) -> Tensor:
    """Average the rows of ``x`` that share a source image: ``(num_images, D)``.

    With a batch that fills every montage each image has exactly one tile per level and this is a
    permutation; tiles repeated by the remainder rule are averaged.
    """
    out = x.new_zeros(num_images, x.shape[1]).index_add_(0, src, x)
    count = torch.bincount(src, minlength=num_images).clamp(min=1).to(x.dtype)
    return out / count[:, None]


@MODELS.register_module()
class MultiLevelContrastiveHead(BaseModule):
    """Predictor + multi-level InfoNCE with in-batch negatives gathered from all ranks.

    For every online tile of level ``s`` (source image ``i``) the positive is the target
    embedding of image ``i`` at each level given by :func:`target_levels`, the negatives are the
    target embeddings of every other image of the global batch at that level.

    Args:
        predictor (dict): Predictor config (an mmpretrain ``NonLinearNeck``).
        num_levels (int): Number of montage levels ``S``.
        loss_mode (str): ``'a'`` (default), ``'b'``, ``'c'`` or ``'d'``.
        level_weights (Sequence[float], optional): Weight of each online level. Defaults to
            ``1 / 2**(s + 1)``.
        temperature (float): InfoNCE temperature. Defaults to 1.0 (MoCo v3 R-50).
        scale_by_temperature (bool): Multiply the loss by ``2T`` (MoCo v3). Defaults to True.
    """

    def __init__(self,
                 predictor: dict,
                 num_levels: int = 4,
                 loss_mode: str = 'a',
                 level_weights: Optional[Sequence[float]] = None,
                 temperature: float = 1.0,
                 scale_by_temperature: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_mode not in LOSS_MODES:
            raise ValueError(f'loss_mode must be one of {LOSS_MODES}, got {loss_mode!r}')
        if level_weights is None:
            level_weights = [1 / 2**(s + 1) for s in range(num_levels)]
        if len(level_weights) != num_levels:
            raise ValueError(f'level_weights has {len(level_weights)} entries for '
                             f'num_levels={num_levels}')
        self.predictor = MODELS.build(predictor)
        self.num_levels = num_levels
        self.loss_mode = loss_mode
        self.level_weights = list(level_weights)
        self.temperature = temperature
        self.scale = 2 * temperature if scale_by_temperature else 1.0

    def loss(self, online: Tensor, online_src: Tensor, online_level: Tensor, target: Tensor,
             target_src: Tensor, target_level: Tensor, num_images: int) -> Dict[str, Tensor]:
        """Loss of one direction (online view -> target view).

        Args:
            online (Tensor): ``(T, D)`` online projections of the tiles (before the predictor).
            online_src (Tensor): ``(T,)`` source image of each online tile.
            online_level (Tensor): ``(T,)`` level of each online tile.
            target (Tensor): ``(T', D)`` target projections of the other view's tiles.
            target_src (Tensor): ``(T',)`` source image of each target tile.
            target_level (Tensor): ``(T',)`` level of each target tile.
            num_images (int): Images per rank ``B``.

        Returns:
            dict: ``loss_level{s}`` (weighted; their sum is the total loss) and the detached
            ``pos_sim_level{s}`` / ``neg_sim_level{s}`` cosine similarities.
        """
        pred = self.predictor([online])[0]
        keys = {}
        offset = rank_offset(num_images)
        out: Dict[str, Tensor] = {}
        for s in range(self.num_levels):
            q_mask = online_level == s
            q, labels = pred[q_mask], online_src[q_mask] + offset
            terms, pos, neg = [], [], []
            for t in target_levels(self.loss_mode, s, self.num_levels):
                if t not in keys:
                    k_mask = target_level == t
                    k = per_image_mean(target[k_mask], target_src[k_mask], num_images)
                    keys[t] = all_gather_with_grad(k)
                terms.append(info_nce(q, keys[t], labels, temperature=self.temperature))
                p, n = pair_similarity(q, keys[t], labels)
                pos.append(p)
                neg.append(n)
            out[f'loss_level{s}'] = self.level_weights[s] * self.scale * torch.stack(terms).mean()
            out[f'pos_sim_level{s}'] = torch.stack(pos).mean()
            out[f'neg_sim_level{s}'] = torch.stack(neg).mean()
        return out
