"""Side-by-side cost of MCL vs mmpretrain's BYOL, and of the montage assembler vs a copy.

Both models get the same backbone, batch size and image size; each runs in its own fresh
process (so peak memory is its own), rounds alternate (A, B, A, B, ...) so that machine drift
hits both, and the medians are compared. A training step is forward + backward + SGD step,
including the EMA target update that both methods do.

Examples:
    python tools/benchmark.py --depth 50 --batch 16 --img 224 --steps 3
    python tools/benchmark.py --device cuda --batch 64 --steps 20 --out work_dirs/bench.json
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

FPN_IN = {18: [64, 128, 256, 512], 50: [256, 512, 1024, 2048]}
NUM_CLASSES = 1000
PAIRS = {'ssl': ('byol', 'mcl'), 'sup': ('vanilla-sup', 'mcl-sup')}


def model_cfg(name: str, depth: int, num_levels: int, img: int) -> dict:
    """Model configs at matched backbone width; BN (single process)."""
    bn = dict(type='BN', requires_grad=True)
    backbone = dict(type='ResNet', depth=depth, norm_cfg=bn, zero_init_residual=False)
    feat = FPN_IN[depth][-1]
    if name == 'vanilla-sup':
        return dict(type='ImageClassifier', backbone=dict(backbone, type='mmdet.ResNet',
                                                          out_indices=(3, )),
                    neck=dict(type='GlobalAveragePooling'),
                    head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=feat,
                              loss=dict(type='CrossEntropyLoss')))
    if name == 'mcl-sup':
        return dict(
            type='MCLSupervised', num_levels=num_levels,
            backbone=dict(backbone, type='mmdet.ResNet'),
            neck=dict(type='mmdet.FPN', in_channels=FPN_IN[depth], out_channels=256, num_outs=4,
                      norm_cfg=bn),
            tile_pooler=dict(type='TilePooler', out_size=img // 32),
            tile_head=dict(type='ConvTileHead', norm_cfg=bn),
            head=dict(type='MultiLevelClsHead', num_classes=NUM_CLASSES, in_channels=256))
    if name == 'byol':
        return dict(
            type='mmpretrain.BYOL', base_momentum=0.01, backbone=dict(backbone, type='mmpretrain.ResNet'),
            neck=dict(type='NonLinearNeck', in_channels=feat, hid_channels=4096, out_channels=256,
                      num_layers=2, with_bias=True, with_last_bn=False, with_avg_pool=True,
                      norm_cfg=dict(type='BN1d')),
            head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                      predictor=dict(type='NonLinearNeck', in_channels=256, hid_channels=4096,
                                     out_channels=256, num_layers=2, with_bias=True,
                                     with_last_bn=False, with_avg_pool=False,
                                     norm_cfg=dict(type='BN1d'))))
    return dict(
        type='MCL', num_levels=num_levels,
        backbone=dict(backbone, type='PEResNet', stem_pos_embed=dict(type='spe')),
        neck=dict(type='mmdet.FPN', in_channels=FPN_IN[depth], out_channels=256, num_outs=4,
                  norm_cfg=bn),
        tile_pooler=dict(type='TilePooler', out_size=img // 32),
        tile_head=dict(type='ConvTileHead', norm_cfg=bn),
        projector=dict(type='NonLinearNeck', in_channels=256, hid_channels=2048, out_channels=256,
                       with_last_bn=True, with_avg_pool=False, norm_cfg=dict(type='BN1d')),
        head=dict(type='MultiLevelContrastiveHead',
                  predictor=dict(type='NonLinearNeck', in_channels=256, hid_channels=2048,
                                 out_channels=256, with_last_bn=False, with_avg_pool=False,
                                 norm_cfg=dict(type='BN1d'))))


def peak_mem_mb(device: str) -> float:
    import resource

    import torch
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(args: argparse.Namespace) -> None:
    """One model, ``args.steps`` timed steps; prints a JSON line."""
    import torch
    from mmengine.logging import MessageHub

    from mmengine.registry import init_default_scope

    import mcl_plugin  # noqa: F401
    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    torch.manual_seed(0)
    MessageHub.get_current_instance().update_info('max_iters', 10**6)
    model = MODELS.build(model_cfg(args.worker, args.depth, args.levels, args.img)).to(args.device)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                          momentum=0.9)
    n_views = {'mcl': 2 * args.levels, 'byol': 2, 'mcl-sup': args.levels, 'vanilla-sup': 1}
    views = [torch.rand(args.batch, 3, args.img, args.img, device=args.device)
             for _ in range(n_views[args.worker])]
    samples = []
    if args.worker.endswith('sup'):
        from mmpretrain.structures import DataSample
        samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(args.batch)]
        if args.worker == 'vanilla-sup':
            views = views[0]
    times = []
    for i in range(args.warmup + args.steps):
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        losses = model.loss(views, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps(dict(model=args.worker, times=times, peak_mem_mb=peak_mem_mb(args.device))))


def bench_assembler(args: argparse.Namespace) -> dict:
    """Median time of the S-level montage assembly vs ``clone()`` of the same S views."""
    import torch

    from mcl_plugin.models.utils import MontageAssembler
    views = [torch.rand(args.batch, 3, args.img, args.img, device=args.device)
             for _ in range(args.levels)]
    out = {}
    for mode in ('bilinear', 'area'):
        asm = MontageAssembler(mode=mode)
        t_asm, t_copy = [], []
        for i in range(3 + args.assembler_reps):
            t0 = time.perf_counter()
            asm(views)
            t1 = time.perf_counter()
            [v.clone() for v in views]
            t2 = time.perf_counter()
            if i >= 3:
                t_asm.append(t1 - t0)
                t_copy.append(t2 - t1)
        a, c = statistics.median(t_asm), statistics.median(t_copy)
        out[mode] = dict(assemble_ms=a * 1e3, copy_ms=c * 1e3, ratio=a / c)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=50, choices=sorted(FPN_IN))
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--img', type=int, default=224)
    parser.add_argument('--levels', type=int, default=4)
    parser.add_argument('--steps', type=int, default=3, help='timed steps per round')
    parser.add_argument('--rounds', type=int, default=2, help='alternating rounds per model')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--assembler-reps', type=int, default=20)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default='work_dirs/benchmark/mcl_vs_byol.json')
    parser.add_argument('--pair', choices=sorted(PAIRS), default='ssl',
                        help='ssl: MCL vs mmpretrain BYOL; sup: MCL-sup vs its vanilla twin')
    parser.add_argument('--worker', choices=[n for p in PAIRS.values() for n in p],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)

    import torch
    results = dict(config=vars(args), torch=torch.__version__, threads=torch.get_num_threads(),
                   machine=os.uname().machine, cpus=os.cpu_count())
    base, ours = PAIRS[args.pair]
    runs = {base: [], ours: []}
    mem = {base: [], ours: []}
    for r in range(args.rounds):
        for name in (base, ours) if r % 2 == 0 else (ours, base):
            cmd = [sys.executable, __file__, '--worker', name, '--pair', args.pair] + [
                f'--{k}={v}' for k, v in (('depth', args.depth), ('batch', args.batch),
                                         ('img', args.img), ('levels', args.levels),
                                         ('steps', args.steps), ('warmup', args.warmup),
                                         ('device', args.device))]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rec = json.loads(line.strip().splitlines()[-1])
            runs[name] += rec['times']
            mem[name].append(rec['peak_mem_mb'])
            print(f'round {r} {name}: median step {statistics.median(rec["times"]):.3f} s, '
                  f'peak mem {rec["peak_mem_mb"]:.0f} MB', flush=True)
    for name in runs:
        results[name] = dict(step_s=statistics.median(runs[name]), steps=runs[name],
                             images_per_s=args.batch / statistics.median(runs[name]),
                             peak_mem_mb=max(mem[name]))
    results['step_ratio'] = results[ours]['step_s'] / results[base]['step_s']
    results['mem_ratio'] = results[ours]['peak_mem_mb'] / results[base]['peak_mem_mb']
    results['assembler'] = bench_assembler(args)
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    print(f"\n| | {base} | {ours} (S={args.levels}) | ratio |\n|---|---|---|---|\n"
          f"| step time (s) | {results[base]['step_s']:.3f} | {results[ours]['step_s']:.3f} | "
          f"{results['step_ratio']:.2f} |\n"
          f"| peak memory (MB, {'CUDA' if args.device.startswith('cuda') else 'RSS'}) | "
          f"{results[base]['peak_mem_mb']:.0f} | {results[ours]['peak_mem_mb']:.0f} | "
          f"{results['mem_ratio']:.2f} |")
    for mode, a in results['assembler'].items():
        print(f"assembler ({mode}): {a['assemble_ms']:.2f} ms vs copy {a['copy_ms']:.2f} ms "
              f"-> {a['ratio']:.2f}x")
    print(f'written {args.out}')


if __name__ == '__main__':
    main()
