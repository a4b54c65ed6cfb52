"""DetCo's loss: g<->g, l<->l and g<->l MoCo InfoNCE terms on every stage (Eq. 1-5)."""
from typing import Dict, Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

from ..losses.info_nce import moco_info_nce

#: Loss terms: name -> (query kind, key kind). Negatives come from the key kind's queue.
TERMS = {'gg': ('g', 'g'), 'll': ('l', 'l'), 'gl': ('l', 'g')}


@MODELS.register_module()
class DetCoHead(BaseModule):
    """Weighted sum over stages of the three cross global/local contrasts of DetCo.

    For stage ``i`` (weight ``w_i``), with query embeddings ``q^g`` (query global view),
    ``q^l`` (query patch set), key embeddings ``k^g``, ``k^l`` and the stage's global and local
    queues:

    * ``g<->g``: ``q^g`` vs positive ``k^g``, negatives from the global queue (Eq. 2);
    * ``l<->l``: ``q^l`` vs positive ``k^l``, negatives from the local queue (Eq. 5);
    * ``g<->l``: ``q^l`` vs positive ``k^g``, negatives from the global queue (Eq. 4).

    Each weighted term is returned as ``loss_<term>_res<i+2>`` (mmengine sums every key with
    ``loss`` in its name, so the total is Eq. 1). Not symmetrised: the paper defines only these
    directions.

    Args:
        temperature (float): Softmax temperature; not stated by DetCo, MoCo v2's 0.2.
        loss_weights (Sequence[float]): Stage weights from shallow (res2) to deep (res5),
            un-normalised. Defaults to DetCo's ``(0.1, 0.4, 0.7, 1.0)``.
        loss_terms (Sequence[str]): Subset of ``('gg', 'll', 'gl')``; ``('gg',)`` is the
            HIC-only ablation (Table 1b), ``('gg',)`` with weights ``(0, 0, 0, 1)`` MoCo v2.
        init_cfg (dict, optional): Unused (no parameters).
    """

    def __init__(self,
                 temperature: float = 0.2,
                 loss_weights: Sequence[float] = (0.1, 0.4, 0.7, 1.0),
                 loss_terms: Sequence[str] = ('gg', 'll', 'gl'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        unknown = set(loss_terms) - set(TERMS)
        if unknown or not loss_terms:
            raise ValueError(f'loss_terms must be a non-empty subset of {tuple(TERMS)}, got '
                             f'{tuple(loss_terms)}')
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        self.temperature = temperature
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.loss_terms = tuple(t for t in TERMS if t in loss_terms)

    @property
    def uses_local(self) -> bool:
        """Whether any term needs the patch sets."""
        return any('l' in TERMS[t] for t in self.loss_terms)

    def loss(self,
             q_global: Sequence[Tensor],
             k_global: Sequence[Tensor],
             neg_global: Sequence[Tensor],
             q_local: Optional[Sequence[Tensor]] = None,
             k_local: Optional[Sequence[Tensor]] = None,
             neg_local: Optional[Sequence[Tensor]] = None,
             stage_names: Optional[Sequence[str]] = None) -> Dict[str, Tensor]:
        """All weighted terms; every argument is a per-stage list.

        Args:
            q_global, k_global: ``(N, D)`` query / key global embeddings.
            neg_global: ``(K, D)`` global queue (before this step's keys are enqueued).
            q_local, k_local, neg_local: the same for the patch sets (needed by ``ll``/``gl``).
            stage_names: Log names of the stages. Defaults to ``res2 .. res5``.
        """
        n = len(q_global)
        if len(self.loss_weights) != n:
            raise ValueError(f'{len(self.loss_weights)} loss_weights for {n} stages')
        names = list(stage_names) if stage_names else [f'res{i + 2}' for i in range(n)]
        emb = {'g': (q_global, k_global, neg_global), 'l': (q_local, k_local, neg_local)}
        losses: Dict[str, Tensor] = {}
        for i, (name, w) in enumerate(zip(names, self.loss_weights)):
            for term in self.loss_terms:
                q_kind, k_kind = TERMS[term]
                query, key, neg = emb[q_kind][0], emb[k_kind][1], emb[k_kind][2]
                if query is None or key is None or neg is None:
                    raise ValueError(f'loss term {term} needs the local embeddings')
                losses[f'loss_{term}_{name}'] = w * moco_info_nce(query[i], key[i], neg[i],
                                                                  self.temperature)
        return losses
