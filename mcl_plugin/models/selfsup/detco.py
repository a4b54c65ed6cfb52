"""DetCo: multi-stage MoCo v2 with cross global / jigsaw-local contrasts."""
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..necks.detco_neck import DetCoNeck, stack_patches
from ..utils.ema import MomentumEncoder
from ..utils.queue import NegativeQueue


@MODELS.register_module()
class DetCo(BaseSelfSupervisor):
    """DetCo (Xie et al., ICCV 2021): MoCo v2 with hierarchical intermediate contrast (HIC) and
    cross global-local contrast (CGLC).

    Inputs per image (:class:`~mcl_plugin.datasets.transforms.GlobalLocalViews`): the query and
    key global views ``inputs[0]``, ``inputs[1]`` (``(N, 3, 224, 224)``), then the 9 patches of
    the query set ``inputs[2:11]`` and of the key set ``inputs[11:20]`` (``(N, 3, 64, 64)``
    each). The 9 patches of a set are stacked into one ``(9N, 3, 64, 64)`` batch, so every set
    is a single backbone pass. The backbone returns res2..res5; :class:`DetCoNeck` projects
    each stage with its own global head and its own local head (9 pooled patch features
    concatenated); :class:`DetCoHead` sums the per-stage ``g<->g``, ``l<->l`` and ``g<->l``
    MoCo InfoNCE terms with the stage weights.

    The key encoder ``target_net`` is a :class:`MomentumEncoder` (constant momentum) over
    ``backbone`` and ``neck`` (``target_net.module.backbone`` / ``.neck``); it is updated
    before the keys are computed and never receives gradients. Each projection head has its
    own :class:`NegativeQueue`, held by the algorithm (``queues['g_res2']`` ...
    ``queues['l_res5']``: 8 queues); :class:`DetCoHead` uses the queues as they were before
    this step, then the step's normalised keys of all ranks are enqueued.

    Values DetCo does not state are MoCo v2's: queue length 65536, embedding 128-d, temperature
    0.2 (in the head), key-encoder momentum 0.999, per-GPU BN with ``shuffle_bn``; the MLP
    widths are the neck's. ``configs/detco/README.md`` compares every choice with the paper and
    the public code.

    Args:
        backbone (dict): ResNet with ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`DetCoNeck`.
        head (dict): :class:`DetCoHead`.
        queue_len (int): Keys per queue ``K``. Defaults to 65536.
        feat_dim (int): Embedding width (the neck's ``out_channels``). Defaults to 128.
        momentum (float): Key-encoder momentum in mmengine's convention
            (``key = (1 - m) * key + m * query``): MoCo's 0.999 is ``m = 0.001`` (default).
        shuffle_bn (bool): MoCo's shuffling BN: with several processes, the key batch is
            shuffled across ranks before the key encoder and restored after, so a query and its
            key never share per-GPU BN statistics (a no-op for ``SyncBN`` statistics and in a
            single process, so use per-GPU BN with it). Defaults to True.
        pretrained (str, optional): Checkpoint to initialise from.
        data_preprocessor (dict, optional): ``SelfSupDataPreprocessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 shuffle_bn: bool = True,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone,
                         neck=neck,
                         head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(self.neck, DetCoNeck):
            raise TypeError(f'DetCo needs a DetCoNeck, got {type(self.neck).__name__}')
        if self.neck.out_channels != feat_dim:
            raise ValueError(f'feat_dim={feat_dim} differs from the neck out_channels='
                             f'{self.neck.out_channels}')
        if self.head.uses_local and self.neck.local_heads is None:
            raise ValueError(f'loss_terms {self.head.loss_terms} need DetCoNeck(with_local=True)')
        indices = getattr(self.backbone, 'out_indices', range(self.neck.num_stages))
        self.stage_names = [f'res{i + 2}' for i in indices]
        if len(self.stage_names) != self.neck.num_stages:
            raise ValueError(f'backbone out_indices {tuple(indices)} give '
                             f'{len(self.stage_names)} stages, the neck has '
                             f'{self.neck.num_stages}')
        self.queue_len, self.feat_dim = queue_len, feat_dim
        self.momentum, self.shuffle_bn = momentum, shuffle_bn
        self.target_net = MomentumEncoder(self.online_modules(), momentum)
        kinds = ('g', 'l') if self.head.uses_local else ('g', )
        self.queues = nn.ModuleDict({
            f'{kind}_{name}': NegativeQueue(queue_len, feat_dim)
            for name in self.stage_names
            for kind in kinds
        })

    def online_modules(self) -> Dict[str, nn.Module]:
        """Modules mirrored by the key encoder (``target_net.module.<name>``)."""
        return dict(backbone=self.backbone, neck=self.neck)

    @property
    def num_patches(self) -> int:
        return self.neck.num_patches

    def split_views(self, inputs: List[Tensor]) -> Dict[str, Optional[Tensor]]:
        """Query/key global views and patch sets (``(N, P, C, h, w)``) from the view list."""
        P = self.num_patches
        need = 2 + 2 * P if self.head.uses_local else 2
        if not isinstance(inputs, (list, tuple)) or len(inputs) < need:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(f'DetCo needs {need} views per image (2 global + 2 sets of {P} '
                             f'patches from GlobalLocalViews), got {got}')
        views: Dict[str, Optional[Tensor]] = dict(img_q=inputs[0],
                                                  img_k=inputs[1],
                                                  patch_q=None,
                                                  patch_k=None)
        if self.head.uses_local:
            views['patch_q'] = torch.stack(list(inputs[2:2 + P]), dim=1)
            views['patch_k'] = torch.stack(list(inputs[2 + P:2 + 2 * P]), dim=1)
        return views

    @staticmethod
    def encode(modules: Mapping[str, nn.Module], x: Tensor) -> List[Tensor]:
        """Stage embeddings of a global batch ``(N, C, H, W)`` (global heads) or a patch batch
        ``(N, P, C, h, w)`` (one backbone pass over the ``N * P`` patches, local heads)."""
        if x.dim() == 5:
            return modules['neck'].forward_local(modules['backbone'](stack_patches(x.unbind(1))))
        return modules['neck'].forward_global(modules['backbone'](x))

    def keys(self, x: Tensor) -> List[Tensor]:
        """L2-normalised key embeddings (MoCo's shuffling BN across ranks if enabled)."""
        keys = self.target_net(self.encode, x, shuffle_bn=self.shuffle_bn)
        return [F.normalize(k, dim=1) for k in keys]

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Weighted per-stage ``g<->g``, ``l<->l``, ``g<->l`` losses (see the class docs)."""
        views = self.split_views(inputs)
        local = self.head.uses_local
        online = self.online_modules()
        q_g = self.encode(online, views['img_q'])
        q_l = self.encode(online, views['patch_q']) if local else None
        self.target_net.update_parameters(online)
        k_g = self.keys(views['img_k'])
        k_l = self.keys(views['patch_k']) if local else None
        # Detached copies: the queues are written in place below, before backward.
        neg_g = [self.queues[f'g_{n}'].negatives() for n in self.stage_names]
        neg_l = [self.queues[f'l_{n}'].negatives() for n in self.stage_names] if local else None
        losses = self.head.loss(q_g, k_g, neg_g, q_l, k_l, neg_l, self.stage_names)
        for i, name in enumerate(self.stage_names):
            self.queues[f'g_{name}'].enqueue(k_g[i])
            if local:
                self.queues[f'l_{name}'].enqueue(k_l[i])
        return losses

    def extract_feat(self,
                     inputs: Tensor,
                     data_samples: Optional[Sequence] = None,
                     **kwargs) -> Sequence[Tensor]:
        """Backbone stage features of a batch of images."""
        return self.backbone(inputs)
