"""Multi-level InfoNCE over montage tiles (MCL §3.3, Fig. 3)."""
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..losses.info_nce import info_nce, pair_similarity
from ..utils.gather import all_gather_with_grad, rank_offset
from ..utils.montage import MontageBatch

LOSS_MODES = ('a', 'b', 'c', 'd')


class LevelTerms(NamedTuple):
    """Per-level terms of one loss direction: ``loss[s]`` (weighted), ``pos_sim[s]`` and
    ``neg_sim[s]`` (detached mean cosine similarities)."""
    loss: List[Tensor]
    pos_sim: List[Tensor]
    neg_sim: List[Tensor]


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
        per_level_predictor (bool): One predictor per level (``predictor.{s}``), each run on
            its level's tiles only, as the official ``LatentMultiPredictContrastHead`` with
            ``head_num=4`` (``openselfsup/models/heads/latent_pred_head.py:60-95`` of
            GuoQiushan/MCL). Defaults to False: one predictor, one pass over all tiles.
    """

    def __init__(self,
                 predictor: dict,
                 num_levels: int = 4,
                 loss_mode: str = 'a',
                 level_weights: Optional[Sequence[float]] = None,
                 temperature: float = 1.0,
                 scale_by_temperature: bool = True,
                 per_level_predictor: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_mode not in LOSS_MODES:
            raise ValueError(f'loss_mode must be one of {LOSS_MODES}, got {loss_mode!r}')
        if level_weights is None:
            level_weights = [1 / 2**(s + 1) for s in range(num_levels)]
        if len(level_weights) != num_levels:
            raise ValueError(f'level_weights has {len(level_weights)} entries for '
                             f'num_levels={num_levels}')
        self.per_level_predictor = per_level_predictor
        self.predictor = nn.ModuleList(
            MODELS.build(predictor)
            for _ in range(num_levels)) if per_level_predictor else MODELS.build(predictor)
        self.num_levels = num_levels
        self.loss_mode = loss_mode
        self.level_weights = list(level_weights)
        self.temperature = temperature
        self.scale = 2 * temperature if scale_by_temperature else 1.0

    @property
    def num_target_levels(self) -> int:
        """The loss reads target levels ``[0, num_target_levels)`` only (mode ``a``: 1; ``c``:
        ``S - 1``; ``b`` and ``d``: ``S``), so the target needs to embed no other tile."""
        return 1 + max(t for s in range(self.num_levels)
                       for t in target_levels(self.loss_mode, s, self.num_levels))

    def loss(self, online: Sequence[Tensor], target: Sequence[Tensor],
             batches: Sequence[MontageBatch]) -> Dict[str, Tensor]:
        """Symmetrised loss of two branches: the online tiles of branch ``a`` against the target
        embeddings of branch ``b``, for ``(a, b) = (0, 1)`` and ``(1, 0)``.

        The losses of the two directions are summed (both train the network); their
        similarities are averaged (diagnostics).

        Args:
            online (Sequence[Tensor]): ``(T_a, D)`` online projections of each branch's tiles
                (before the predictor).
            target (Sequence[Tensor]): ``(T_a, D)`` target projections of each branch's tiles,
                or of a prefix of them that holds the levels the loss reads
                (:attr:`num_target_levels`).
            batches (Sequence[MontageBatch]): The two branches' montage batches (tile order,
                source image and level of every tile).

        Returns:
            dict: ``loss_level{s}`` (weighted; their sum is the total loss) and the detached
            ``pos_sim_level{s}`` / ``neg_sim_level{s}`` cosine similarities.
        """
        if not len(online) == len(target) == len(batches) == 2:
            raise ValueError(f'{type(self).__name__}.loss needs two branches, got '
                             f'{len(online)} online, {len(target)} target, {len(batches)} batches')
        ab = self.directional_loss(online[0], target[1], batches[0], batches[1])
        ba = self.directional_loss(online[1], target[0], batches[1], batches[0])
        out: Dict[str, Tensor] = {}
        for s in range(self.num_levels):
            out[f'loss_level{s}'] = ab.loss[s] + ba.loss[s]
            out[f'pos_sim_level{s}'] = (ab.pos_sim[s] + ba.pos_sim[s]) / 2
            out[f'neg_sim_level{s}'] = (ab.neg_sim[s] + ba.neg_sim[s]) / 2
        return out

    def directional_loss(self, online: Tensor, target: Tensor, online_batch: MontageBatch,
                         target_batch: MontageBatch) -> LevelTerms:
        """Loss of one direction: online tiles of one branch -> target tiles of the other.

        Args:
            online (Tensor): ``(T, D)`` online projections of ``online_batch``'s tiles.
            target (Tensor): ``(T', D)`` target projections of ``target_batch``'s tiles (or of
                the first ``T'`` of them: tiles are ordered by level).
            online_batch (MontageBatch): Source image and level of every online tile.
            target_batch (MontageBatch): Source image and level of every target tile.

        Returns:
            LevelTerms: per level, the weighted loss and the detached positive / negative
            cosine similarities.
        """
        num_images = online_batch.num_images
        t_level, t_src = target_batch.level[:target.shape[0]], target_batch.src[:target.shape[0]]
        if (t_level < self.num_target_levels).sum() != (target_batch.level <
                                                       self.num_target_levels).sum():
            raise ValueError(f'the loss reads target levels 0..{self.num_target_levels - 1} but '
                             f'got {target.shape[0]} target embeddings, fewer than their tiles')
        if not self.per_level_predictor:
            pred = self.predictor([online])[0]
        keys = {}
        offset = rank_offset(num_images)
        out = LevelTerms([], [], [])
        for s in range(self.num_levels):
            q_mask = online_batch.level == s
            q = self.predictor[s]([online[q_mask]])[0] if self.per_level_predictor else pred[q_mask]
            labels = online_batch.src[q_mask] + offset
            terms, pos, neg = [], [], []
            for t in target_levels(self.loss_mode, s, self.num_levels):
                if t not in keys:
                    k_mask = t_level == t
                    k = per_image_mean(target[k_mask], t_src[k_mask], num_images)
                    keys[t] = all_gather_with_grad(k)
                terms.append(info_nce(q, keys[t], labels, temperature=self.temperature))
                p, n = pair_similarity(q, keys[t], labels)
                pos.append(p)
                neg.append(n)
            out.loss.append(self.level_weights[s] * self.scale * torch.stack(terms).mean())
            out.pos_sim.append(torch.stack(pos).mean())
            out.neg_sim.append(torch.stack(neg).mean())
        return out
