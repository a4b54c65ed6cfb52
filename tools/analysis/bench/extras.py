"""Side measurements of the benchmark: SoCo's proposal generation (images/s of selective search)
and the montage assembler of MCL against a plain copy."""
import os
import os.path as osp
import statistics
import time
from typing import List, Optional, Sequence


def sample_images(root: str, count: int) -> List[str]:
    """``count`` image files spread evenly over the sorted files under ``root``."""
    exts = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
    files = sorted(osp.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f.lower().endswith(exts))
    if not files:
        raise FileNotFoundError(f'no images under {root}')
    step = max(1, len(files) // max(1, count))
    return files[::step][:count]


def bench_selective_search(paths: Sequence[str],
                           max_side: Optional[int] = None,
                           threads: int = 1) -> dict:
    """Images/s of SoCo's proposal generation: ``process_image`` of
    ``tools/generate_proposals.py`` (:mod:`tools.proposals`: read + OpenCV selective search,
    fast mode + SoCo's filters) in this process, one image after the other, after one untimed
    image.

    Args:
        paths (Sequence[str]): Image files.
        max_side (int, optional): ``--max-side`` of the generator (None: its default, original
            resolution).
        threads (int): ``cv2.setNumThreads`` (the generator's workers use 1).

    Returns:
        dict: ``mode, max_side, images, seconds (per image), images_per_s, mean_pixels,
        mean_boxes_raw, mean_boxes_final``.
    """
    import cv2

    from tools.proposals import ProposalFilter, SelectiveSearchConfig, process_image
    cv2.setNumThreads(threads)
    cfg, filt = SelectiveSearchConfig(mode='fast', max_side=max_side), ProposalFilter()
    process_image(paths[0], 'warmup', cfg, filt)
    recs = [process_image(p, osp.basename(p), cfg, filt) for p in paths]
    bad = [r for r in recs if 'error' in r]
    if bad:
        raise RuntimeError(f'selective search failed: {bad}')
    secs = [r['seconds'] for r in recs]
    return dict(mode='fast', max_side=max_side, images=len(recs), seconds=secs,
                images_per_s=len(secs) / sum(secs),
                mean_pixels=statistics.mean(r['width'] * r['height'] for r in recs),
                mean_boxes_raw=statistics.mean(r['num_raw'] for r in recs),
                mean_boxes_final=statistics.mean(len(r['boxes']) for r in recs))


def bench_assembler(batch: int, img: int, levels: int, reps: int, device: str = 'cpu') -> dict:
    """Median time of the S-level montage assembly vs ``clone()`` of the same S views."""
    import torch

    from mcl_plugin.models.utils import MontageAssembler
    views = [torch.rand(batch, 3, img, img, device=device) for _ in range(levels)]
    out = {}
    for mode in ('bilinear', 'area'):
        asm = MontageAssembler(mode=mode)
        t_asm, t_copy = [], []
        for i in range(3 + reps):
            t0 = time.perf_counter()
            asm(views)
            t1 = time.perf_counter()
            [v.clone() for v in views]
            t2 = time.perf_counter()
            if i >= 3:
                t_asm.append(t1 - t0)
                t_copy.append(t2 - t1)
        a, c = statistics.median(t_asm), statistics.median(t_copy)
        out[mode] = dict(assemble_ms=a * 1e3, copy_ms=c * 1e3, ratio=a / c, levels=levels)
    return out
