"""DetCo's shuffling BN on 2 gloo processes: with per-GPU BN the shuffle changes the BN batch of
the key encoder (and nothing else); with SyncBN statistics it changes nothing.

Each rank holds 4 of 8 images. The key encoder is in train mode, so its BN layers normalise with
the statistics of the batch they see. With shuffle-BN a rank's key encoder sees 4 images drawn
from both ranks (MoCo's ``batch_shuffle_ddp``) and the keys are sent back to their images' ranks;
the query encoder always sees the rank's own 4 images. SyncBN needs CUDA in torch, so its
statistics (mean and biased variance over both ranks' batches) are reproduced on CPU with an
all-reduce in the key encoder's BN layers.
"""
import os
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
B, WORLD, IMG, PATCH = 8, 2, 32, 16
N = B // WORLD
TOL = dict(rtol=1e-4, atol=1e-5)


def bn_detco_cfg() -> dict:
    """A tiny DetCo (R18 at width 8, 8-d embeddings) with per-GPU BN, shuffle-BN on."""
    return dict(type='DetCo', queue_len=16, feat_dim=8, momentum=0.5, shuffle_bn=True,
                backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(0, 1, 2, 3),
                              stem_channels=8, base_channels=8,
                              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
                neck=dict(type='DetCoNeck', in_channels=(8, 16, 32, 64), hid_channels=16,
                          out_channels=8),
                head=dict(type='DetCoHead', temperature=0.2))


def build():
    from mmengine.registry import init_default_scope

    import mcl_plugin  # noqa: F401
    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    torch.manual_seed(0)
    model = MODELS.build(bn_detco_cfg())
    model.init_weights()
    return model.train()


def global_batch():
    """The 8 key images and the 8 key patch sets ``(B, 9, 3, 16, 16)``."""
    g = torch.Generator().manual_seed(1)
    img = F.interpolate(torch.rand(B, 3, 4, 4, generator=g), size=(IMG, IMG), mode='bilinear')
    patches = F.interpolate(torch.rand(B * 9, 3, 4, 4, generator=g), size=(PATCH, PATCH),
                            mode='bilinear').view(B, 9, 3, PATCH, PATCH)
    return img, patches


class AllReduceBN(nn.BatchNorm2d):
    """SyncBN's training-mode statistics over all ranks, on CPU with gloo (no-grad use only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        stats = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)),
                           torch.tensor([x.numel() / c])])
        dist.all_reduce(stats)
        mean = stats[:c] / stats[-1]
        var = stats[c:2 * c] / stats[-1] - mean * mean
        shape = (1, c, 1, 1)
        return ((x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps) *
                self.weight.view(shape) + self.bias.view(shape))


def sync_bn(module: nn.Module) -> None:
    """Swap every BatchNorm2d under ``module`` for :class:`AllReduceBN` (same parameters)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            new = AllReduceBN(child.num_features, eps=child.eps)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            sync_bn(child)


def rank_run(rank: int) -> dict:
    """Queries and keys of this rank's 4 images: shuffle-BN on / off, per-GPU BN / SyncBN."""
    from mcl_plugin.models.utils import ema as ema_module
    model = build()
    img, patches = global_batch()
    own = slice(rank * N, (rank + 1) * N)
    perms = []
    shuffle = ema_module.batch_shuffle_ddp

    def recording_shuffle(x):
        out, idx_unshuffle = shuffle(x)
        perms.append(torch.argsort(idx_unshuffle))  # the broadcast idx_shuffle
        return out, idx_unshuffle

    ema_module.batch_shuffle_ddp = recording_shuffle
    torch.manual_seed(2)  # the shuffle permutations (drawn on rank 0, broadcast)
    out = dict(perms=perms)
    try:
        with torch.no_grad():
            for bn in ('bn', 'syncbn'):
                if bn == 'syncbn':
                    sync_bn(model.target_net)
                for on in (True, False):
                    model.shuffle_bn = on
                    tag = f'{bn}_{"shuffle" if on else "plain"}'
                    out[f'q_{tag}'] = model.encode(model.online_modules(), img[own])
                    out[f'kg_{tag}'] = model.keys(img[own])
                    out[f'kl_{tag}'] = model.keys(patches[own])
    finally:
        ema_module.batch_shuffle_ddp = shuffle
    return out


def _worker(rank: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        out[rank] = rank_run(rank)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rows(keys, image_rows):
    """Per-stage keys of the images ``image_rows`` from per-stage ``(B, D)`` keys."""
    return [k[image_rows] for k in keys]


def _close(a, b) -> bool:
    return all(torch.allclose(x, y, **TOL) for x, y in zip(a, b))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_shuffle_changes_the_key_bn_batch_with_per_gpu_bn_only():
    """Per-GPU BN: the key of each image equals the key computed (in one process, plain BN) in
    the 4-image batch the shuffle sent it to, and differs from the key without the shuffle;
    the queries do not depend on the shuffle. SyncBN: shuffled keys == unshuffled keys == keys
    with the statistics of all 8 images."""
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    res = [out[r] for r in range(WORLD)]
    perms = res[0]['perms']
    # per keys() call with the shuffle: global, patches for per-GPU BN, then for SyncBN
    assert len(perms) == 4 and all(torch.equal(p, q) for p, q in zip(perms, res[1]['perms']))
    for p in perms:  # every permutation sends images to the other rank
        assert bool((p[:N] >= N).any())

    ref = build()  # one process: BN statistics of exactly the batch passed in
    img, patches = global_batch()
    with torch.no_grad():
        for kind, x, perm in (('kg', img, perms[0]), ('kl', patches, perms[1])):
            # per-GPU BN with the shuffle: the keys of the batches the ranks' encoders saw
            seen = [ref.keys(x[perm[r * N:(r + 1) * N]]) for r in range(WORLD)]
            shuffled = [torch.empty(B, k.shape[1]) for k in seen[0]]
            for r in range(WORLD):
                for s, k in zip(shuffled, seen[r]):
                    s[perm[r * N:(r + 1) * N]] = k
            every = ref.keys(x)  # SyncBN: the statistics of all 8 images
            gaps = []
            for r in range(WORLD):
                own = list(range(r * N, (r + 1) * N))
                plain = ref.keys(x[own])
                assert _close(res[r][f'{kind}_bn_shuffle'], _rows(shuffled, own)), (kind, r)
                assert _close(res[r][f'{kind}_bn_plain'], plain), (kind, r)
                assert _close(res[r][f'{kind}_syncbn_shuffle'], _rows(every, own)), (kind, r)
                assert _close(res[r][f'{kind}_syncbn_plain'], _rows(every, own)), (kind, r)
                gaps += [(a - b).norm(dim=1).min() for a, b in
                         zip(res[r][f'{kind}_bn_shuffle'], res[r][f'{kind}_bn_plain'])]
            # unit-norm keys: every image's key moves, by 0.017 (patch keys, res2) to 0.76
            # (patch keys, res5) in the measured run; with SyncBN they moved by < 1e-4
            assert min(gaps) > 1e-2, (kind, [float(g) for g in gaps])
        for r in range(WORLD):  # the query path never sees the shuffle
            q = res[r]['q_bn_shuffle']
            assert all(torch.equal(a, b) for a, b in zip(q, res[r]['q_bn_plain']))
            own = list(range(r * N, (r + 1) * N))
            assert _close(q, ref.encode(ref.online_modules(), img[own]))


@pytest.mark.parametrize('name', ['detco_r50_8xb32-coslr-200e_in1k.py',
                                  'detco_r50_1xb64-bn-coslr-200e_in1k.py'])
def test_paper_size_configs_use_per_gpu_bn_with_shuffle(name):
    """MoCo v2's codebase: per-GPU BN + shuffle-BN (SyncBN would pool the statistics over all
    GPUs and make the shuffle a no-op)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'detco', name))
    assert cfg.model.shuffle_bn
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert 'SyncBN' not in str(cfg.model)
