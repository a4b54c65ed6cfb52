"""Render what a config's training pipeline feeds the model to PNG files (headless).

MCL / MCL-sup: the montage of every level with its tile grid, each tile's source image id and
the feature level it is read from. SoCo / DetCo / PLRC: their views with boxes, patches or
regions. mmdet fine-tuning configs: images with their ground-truth boxes and masks. The
renderers live in ``mcl_plugin/visualization`` (one class per ``model.type``, built from the
whole config); this script only builds the dataset and writes the pictures.

Example:
    python tools/browse_dataset.py configs/mcl/<an MCL demo config>.py \
        --output-dir work_dirs/browse --num 2
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', default='work_dirs/browse', help='where PNGs go')
    parser.add_argument('--num', type=int, default=2, help='number of pictures to write')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of what the renderer draws at random (montages, points)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``--num`` pictures; returns their paths."""
    args = parse_args(argv)
    import mcl_plugin  # noqa: F401
    from mcl_plugin.visualization import build_renderer
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mcl_plugin'))
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    renderer = build_renderer(cfg, seed=args.seed)  # the whole config, for every method
    os.makedirs(args.output_dir, exist_ok=True)
    name = str(cfg.model.type).split('.')[-1]
    k = renderer.samples_per_image
    written = []
    for n in range(args.num):
        image = renderer.render([dataset[(n * k + i) % len(dataset)] for i in range(k)])
        written.append(osp.join(args.output_dir, f'{name}_{n}.png'))
        if not cv2.imwrite(written[-1], image[..., ::-1]):
            raise OSError(f'could not write {written[-1]}')
        print(f'wrote {written[-1]}')
    return written


if __name__ == '__main__':
    main()
