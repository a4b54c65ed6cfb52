#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""How much of PLRC's distillation teacher row sits on the teacher's own key.

The teacher of ``L_a`` is ``softmax_k(p'_i . p'_k / tau_t)`` over the momentum key points
``p'_k``. With ``teacher='sampled_point'`` the query ``p'_i`` *is* key ``i``; with
``teacher='co_located'`` it is the momentum embedding at the student point's image position on
a third crop (or on view v). This prints, for both, the mean teacher mass on key ``i`` (the
key with the row's index) and the mean largest mass of a row, in two settings:

- ``synthetic``: constructed unit embeddings whose same-region cosine is ``c`` (a region
  vector plus point noise), 4 images x 16 regions x 16 points; the co-located teacher is an
  independent draw of the same region (another crop's point).
- ``model``: the PLRC model of ``--config`` (random initialisation or ``--checkpoint``) on
  real photos through ``GridRegionTwoView(teacher_view=True)``.

Example::

    python tools/analysis/plrc_teacher_mass.py --data-root data/pretrain/train
"""
import argparse
import glob
import random
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

DEMO = osp.join(REPO, 'configs', 'plrc', 'plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py')


def teacher_mass(teacher: Tensor, keys: Tensor, tau: float = 0.07) -> Dict[str, float]:
    """Mean mass on key ``i`` of row ``i``, mean row maximum, mean cosine to key ``i``."""
    teacher, keys = F.normalize(teacher, dim=1), F.normalize(keys, dim=1)
    prob = (teacher @ keys.t() / tau).softmax(1)
    own = prob.diagonal()
    return dict(own=float(own.mean()), max=float(prob.max(1)[0].mean()),
                own_cos=float((teacher * keys).sum(1).mean()))


def synthetic(cos: float, images: int = 4, regions: int = 16, points: int = 16,
              dim: int = 128, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Both teachers on constructed embeddings with same-region cosine ``cos``."""
    gen = torch.Generator().manual_seed(seed)
    region = F.normalize(torch.randn(images * regions, 1, dim, generator=gen), dim=2)

    def draw() -> Tensor:
        noise = F.normalize(torch.randn(images * regions, points, dim, generator=gen), dim=2)
        return F.normalize(cos**0.5 * region + (1 - cos)**0.5 * noise, dim=2).flatten(0, 1)

    keys = draw()
    same = keys.view(images * regions, points, dim)
    sim = same @ same.transpose(1, 2)
    off = ~torch.eye(points, dtype=torch.bool)
    out = dict(sampled_point=teacher_mass(keys, keys), co_located=teacher_mass(draw(), keys))
    out['key_cos'] = dict(same_region=float(sim[:, off].mean()))
    return out


@torch.no_grad()
def model(config: str, data_root: str, num_images: int, checkpoint: Optional[str],
          seed: int) -> Dict[str, Dict[str, float]]:
    """Both teachers on the PLRC model of ``config`` on the images under ``data_root``."""
    import mmcv
    import numpy as np
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mcl_plugin.models.selfsup.plrc import gather_points
    from mcl_plugin.registry import MODELS, TRANSFORMS
    from mcl_plugin.utils import register_all_modules
    register_all_modules()
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed)
    cfg = Config.fromfile(config)
    net = MODELS.build(cfg.model)  # the momentum copies equal the online modules
    if checkpoint:
        load_checkpoint(net, checkpoint, map_location='cpu')
    step = next(s for s in cfg.train_dataloader.dataset.pipeline
                if s.type == 'GridRegionTwoView')
    view = TRANSFORMS.build(dict(step, teacher_view=True, min_overlap=0.))
    files = sorted(glob.glob(osp.join(data_root, '**', '*.*'), recursive=True))[:num_images]
    if not files:
        raise SystemExit(f'no images under {data_root}')
    views, samples = [[], [], []], []
    from mmpretrain.structures import DataSample
    for f in files:
        out = view(dict(img=mmcv.imread(f, channel_order='bgr')))
        for i in range(3):
            views[i].append(torch.from_numpy(out['img'][i]).permute(2, 0, 1))
        ds = DataSample()
        for k in ('region_masks', 'crop_boxes', 'flips'):
            ds.set_field(out[k], k)
        samples.append(ds)
    data = net.data_preprocessor(dict(inputs=[torch.stack(v) for v in views],
                                      data_samples=samples))
    inputs, samples = data['inputs'], data['data_samples']
    net.train()
    maps = net.region_maps(samples, inputs[0].device)
    dense_k = net.encode(net.target_net.module, inputs[1])[1]
    pts = net.sample_points(maps)
    keys = gather_points(dense_k, pts.index_k)[pts.valid].flatten(0, 1)
    colo, seen = net.colocated_teacher(inputs, samples, pts.index_q)
    colo, seen = colo[pts.valid].flatten(0, 1), seen[pts.valid].flatten()
    tau = net.head.teacher_temperature
    same = F.normalize(keys.view(-1, net.num_points, keys.shape[1]), dim=2)
    off = ~torch.eye(net.num_points, dtype=torch.bool)
    out = dict(sampled_point=teacher_mass(keys, keys, tau))
    prob = (F.normalize(colo, dim=1) @ F.normalize(keys, dim=1).t() / tau).softmax(1)
    out['co_located'] = dict(own=float(prob.diagonal()[seen].mean()),
                             max=float(prob.max(1)[0][seen].mean()),
                             max_cos=float((F.normalize(colo, dim=1) @ F.normalize(
                                 keys, dim=1).t()).max(1)[0][seen].mean()),
                             visible=float(seen.float().mean()))
    out['key_cos'] = dict(same_region=float((same @ same.transpose(1, 2))[:, off].mean()),
                          keys=keys.shape[0])
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEMO)
    parser.add_argument('--data-root', help='folder of images for the model setting')
    parser.add_argument('--checkpoint')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    fmt = '{:<22} {:>9} {:>12} {:>12} {:>12} {:>12}'
    print(fmt.format('setting', 'key cos', 'own sampled', 'max sampled', 'own coloc.',
                     'max coloc.'))
    for cos in (0.01, 0.5, 0.8, 0.9):
        r = synthetic(cos, seed=args.seed)
        print(fmt.format(f'synthetic c={cos}', f"{r['key_cos']['same_region']:.3f}",
                         f"{r['sampled_point']['own']:.3f}", f"{r['sampled_point']['max']:.3f}",
                         f"{r['co_located']['own']:.3f}", f"{r['co_located']['max']:.3f}"))
    if args.data_root:
        r = model(args.config, args.data_root, args.num_images, args.checkpoint, args.seed)
        print(fmt.format('model', f"{r['key_cos']['same_region']:.3f}",
                         f"{r['sampled_point']['own']:.3f}", f"{r['sampled_point']['max']:.3f}",
                         f"{r['co_located']['own']:.3f}", f"{r['co_located']['max']:.3f}"))
        print(f"{r['key_cos']['keys']} keys; co-located teacher: visible "
              f"{r['co_located']['visible']:.3f}, mean largest cosine to a key "
              f"{r['co_located']['max_cos']:.3f} (sampled point: 1.000)")


if __name__ == '__main__':
    main()
