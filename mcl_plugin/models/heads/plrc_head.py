"""PLRC losses: point-level region contrast, point affinity distillation and the MoCo loss."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

from ..losses.info_nce import info_nce, moco_info_nce


def point_affinity_distillation(student_query: Tensor,
                                teacher_query: Tensor,
                                keys: Tensor,
                                student_temperature: float = 0.1,
                                teacher_temperature: float = 0.07,
                                valid: Optional[Tensor] = None) -> Tensor:
    """Cross entropy between the teacher's and the student's point affinities (Eq. 4).

    ``L_a = -mean_i sum_k A_{i'k'}(tau_t) log A_{ik'}(tau_s)`` with
    ``A_{ik'}(tau) = softmax_k(p_i . p'_k / tau)`` (student, online query ``p_i``) and
    ``A_{i'k'}(tau) = softmax_k(p'_i . p'_k / tau)`` (teacher, momentum query ``p'_i``, no
    gradient). Both rows range over the same keys ``p'_k``. All embeddings are L2-normalised.

    **Which affinity is the student.** The extracted paper lost primes in Eqs. 3-4 and Sec. 4.5.2,
    which leaves two readings: (R1) student ``A_{ik'}``, online query vs momentum keys across the
    views; (R2) student ``A_{ik}``, online-online within view v, against a momentum-momentum
    teacher within view v'. This implements **R1**, because:

    1. Eq. 3's right-hand side is ``exp(p_i . p'_k / tau) / sum_j exp(p_i . p'_j / tau)`` and
       the text calls it "a pairwise term controlled by two indexes i and k'": the defined
       affinity is ``A_{ik'}``; the prime on ``i`` in the extracted left-hand side contradicts
       both and is the artefact.
    2. Sec. 3.3 introduces the affinities as "a natural by-product" of the contrastive InfoNCE;
       the by-product of Eq. 2 is exactly ``softmax_k(p_i . p'_k)``, i.e. ``A_{ik'}``.
    3. The momentum encoder supervises "the point affinities that involve f^E": the teacher has
       only primed (momentum) embeddings, ``A_{i'k'}``; the student must contain ``p_i``.
    4. Strategy 3 of Sec. 4.5.2 (same teacher/student names as the default) "requires an extra
       forward pass with momentum encoders": it computes the teacher's query ``p'_i`` by running
       f^M on view v, at the student's own points. With R1 teacher and student rows are
       distributions over the *same* key set ``{p'_k}``, so the cross entropy is well defined;
       R2 would also pair the key axes of two different point sets by index.

    Which momentum point ``p'_i`` is the teacher's query is the caller's choice
    (:class:`~mcl_plugin.models.selfsup.PLRC` ``teacher``): the official code uses the momentum
    encoder at the student point's image position on another crop, which is not a key.

    The loss is averaged over query points (rows), so it has the scale of a per-point cross
    entropy like ``L_c``; the paper's ``sum_{i,k}`` differs only by the constant number of rows.

    Args:
        student_query (Tensor): ``(M, D)`` online query points ``p_i``.
        teacher_query (Tensor): ``(M, D)`` momentum points ``p'_i`` paired with the queries.
        keys (Tensor): ``(K, D)`` momentum key points ``p'_k``.
        student_temperature (float): ``tau_s`` (paper 0.1).
        teacher_temperature (float): ``tau_t`` (paper 0.07).
        valid (Tensor, optional): ``(M,)`` bool, rows with a teacher (the others are left out
            of the mean). None = all.

    Returns:
        Tensor: Scalar loss (0 with a graph when no row is valid).
    """
    student_query = F.normalize(student_query, dim=1)
    keys = F.normalize(keys, dim=1).detach()
    with torch.no_grad():
        teacher = (F.normalize(teacher_query, dim=1) @ keys.t() / teacher_temperature).softmax(1)
    log_student = (student_query @ keys.t() / student_temperature).log_softmax(1)
    rows = -(teacher * log_student).sum(1)
    if valid is None:
        return rows.mean()
    return rows[valid].sum() / valid.sum().clamp(min=1)


@MODELS.register_module()
class PLRCHead(BaseModule):
    """Loss head of PLRC (Eqs. 1, 2, 4-6).

    ``L = beta * (alpha * L_c + (1 - alpha) * L_a) + (1 - beta) * L_m``, logged as three
    weighted terms ``loss_point_contrast`` (``beta * alpha * L_c``), ``loss_distill``
    (``beta * (1 - alpha) * L_a``, 0 while the distillation is disabled: during the warm-up
    ``L_a`` is simply dropped from Eq. 5, the other weights are unchanged) and ``loss_moco``
    (``(1 - beta) * L_m``); mmengine sums every ``loss*`` key. The unweighted values are logged
    as ``point_nce``, ``affinity_ce`` (computed without gradient during the warm-up) and
    ``image_nce``.

    - ``L_m``: MoCo v2 InfoNCE (:func:`~mcl_plugin.models.losses.moco_info_nce`) of the online
      image embedding against its momentum key (positive) and the algorithm's queue
      (negatives), temperature ``image_temperature``.
    - ``L_c``: multi-positive InfoNCE (:func:`~mcl_plugin.models.losses.info_nce`) of every
      online query point against all momentum key points of the images on this device: keys of
      the same image and the same region are positives, keys of other regions of the same image
      (intra-image) and of the other images (inter-image) are negatives. Each query's loss is
      the mean over its positives; queries are averaged.
    - ``L_a``: :func:`point_affinity_distillation` (see there for the teacher/student reading).

    Args:
        image_temperature (float): ``tau`` of ``L_m`` (not stated in the paper; MoCo v2's 0.2).
        point_temperature (float): ``tau`` of ``L_c`` (not stated; MoCo v2's 0.2).
        student_temperature (float): ``tau_s`` (paper 0.1).
        teacher_temperature (float): ``tau_t`` (paper 0.07).
        alpha (float): Weight of ``L_c`` against ``L_a`` in Eq. 5 (paper 0.5).
        beta (float): Weight of the point-level loss against ``L_m`` in Eq. 6 (paper 0.7).
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 image_temperature: float = 0.2,
                 point_temperature: float = 0.2,
                 student_temperature: float = 0.1,
                 teacher_temperature: float = 0.07,
                 alpha: float = 0.5,
                 beta: float = 0.7,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if not (0. <= alpha <= 1. and 0. <= beta <= 1.):
            raise ValueError(f'alpha and beta must be in [0, 1], got {alpha}, {beta}')
        self.image_temperature = image_temperature
        self.point_temperature = point_temperature
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.alpha = alpha
        self.beta = beta

    def loss_image(self, query: Tensor, key: Tensor, negatives: Tensor) -> Tensor:
        """MoCo v2 ``L_m`` (Eq. 1): ``(B, D)`` online queries, ``(B, D)`` momentum keys,
        ``(K, D)`` queue."""
        return moco_info_nce(query, key.detach(), negatives, self.image_temperature)

    def loss_contrast(self, query: Tensor, keys: Tensor, image_ids: Tensor,
                      region_ids: Tensor) -> Tensor:
        """Point-level region contrast ``L_c`` (Eq. 2) over ``(M, D)`` query/key points."""
        pos_mask = ((image_ids[:, None] == image_ids[None, :]) &
                    (region_ids[:, None] == region_ids[None, :]))
        return info_nce(query, keys.detach(), pos_mask=pos_mask, temperature=self.point_temperature)

    def loss(self,
             img_query: Tensor,
             img_key: Tensor,
             img_negatives: Tensor,
             point_query: Tensor,
             point_key: Tensor,
             image_ids: Tensor,
             region_ids: Tensor,
             distill: bool = True,
             teacher_query: Optional[Tensor] = None,
             teacher_valid: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """All PLRC terms.

        Args:
            img_query (Tensor): ``(B, D)`` online image embeddings ``z`` (view v).
            img_key (Tensor): ``(B, D)`` momentum image embeddings ``z'`` (view v').
            img_negatives (Tensor): ``(K, D)`` the queue of image keys (negatives of ``L_m``).
            point_query (Tensor): ``(M, D)`` online point embeddings ``p_i`` (view v) of the
                images with a common region; may be empty.
            point_key (Tensor): ``(M, D)`` momentum point embeddings ``p'_i`` (view v'),
                row ``i`` sampled in the same region of the same image as query ``i``.
            image_ids (Tensor): ``(M,)`` image index of each point.
            region_ids (Tensor): ``(M,)`` region indicator ``a_i`` of each point.
            distill (bool): Whether ``L_a`` contributes (False during the warm-up).
            teacher_query (Tensor, optional): ``(M, D)`` the teacher's momentum point for each
                query; None = ``point_key`` (the ``'sampled_point'`` teacher).
            teacher_valid (Tensor, optional): ``(M,)`` bool, rows with a teacher.

        Returns:
            dict[str, Tensor]: Weighted ``loss_*`` terms and unweighted diagnostics.
        """
        l_m = self.loss_image(img_query, img_key, img_negatives)
        with torch.no_grad():
            pos_sim = (F.normalize(img_query, dim=1) * F.normalize(img_key, dim=1)).sum(1).mean()
        if point_query.shape[0] == 0:  # no image with a common region: keep the graph, add 0
            l_c = l_a = point_query.sum() * 0.
        else:
            l_c = self.loss_contrast(point_query, point_key, image_ids, region_ids)
            with torch.set_grad_enabled(distill and torch.is_grad_enabled()):
                teacher = point_key if teacher_query is None else teacher_query
                l_a = point_affinity_distillation(point_query, teacher, point_key,
                                                  self.student_temperature,
                                                  self.teacher_temperature, teacher_valid)
        zero = l_m.new_zeros(())
        return dict(loss_point_contrast=self.beta * self.alpha * l_c,
                    loss_distill=self.beta * (1 - self.alpha) * l_a if distill else zero,
                    loss_moco=(1 - self.beta) * l_m,
                    point_nce=l_c.detach(),
                    affinity_ce=l_a.detach(),
                    image_nce=l_m.detach(),
                    image_pos_sim=pos_sim,
                    distill_on=l_m.new_tensor(float(distill)))
