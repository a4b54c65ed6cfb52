"""Render what a config's training pipeline feeds the model to PNG files (headless).

MCL / MCL-sup: the montage of every level with its tile grid, each tile's source image id and
the feature level it is read from. SoCo / DetCo / PLRC: their views with boxes, patches or
regions (renderers in ``mcl_plugin/visualization``). mmdet fine-tuning configs: images with
their ground-truth boxes and masks.

Example:
    python tools/browse_dataset.py configs/mcl/mcl_r18-fpn_1xb16-lars-cpu-demo_pretrain.py \
        --output-dir work_dirs/browse --num 2
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', default='work_dirs/browse', help='where PNGs go')
    parser.add_argument('--num', type=int, default=2, help='number of pictures to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def _draw_detection(sample: dict, classes) -> np.ndarray:
    """An mmdet ``PackDetInputs`` sample: image with GT boxes, masks and class names."""
    img = np.ascontiguousarray(sample['inputs'].permute(1, 2, 0).numpy()[..., ::-1]).copy()
    inst = sample['data_samples'].gt_instances
    rng = np.random.default_rng(0)
    if 'masks' in inst:
        masks = inst.masks.to_ndarray() if hasattr(inst.masks, 'to_ndarray') else inst.masks
        for m in masks:
            color = rng.integers(64, 255, 3)
            img[m.astype(bool)] = (0.5 * img[m.astype(bool)] + 0.5 * color).astype(np.uint8)
    for box, label in zip(inst.bboxes.numpy() if hasattr(inst.bboxes, 'numpy') else
                          inst.bboxes.tensor.numpy(), inst.labels.numpy()):
        x1, y1, x2, y2 = [int(v) for v in box]
        cv2.rectangle(img, (x1, y1), (x2, y2), (255, 255, 0), 2)
        name = classes[int(label)] if classes else str(int(label))
        cv2.putText(img, name, (x1 + 2, max(12, y1 + 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 0), 1, cv2.LINE_AA)
    return img


def main() -> None:
    args = parse_args()
    import mcl_plugin  # noqa: F401
    from mcl_plugin.visualization import RENDERERS
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mcl_plugin'))
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    os.makedirs(args.output_dir, exist_ok=True)
    model_type = cfg.model.type.split('.')[-1]
    renderer = RENDERERS.get(model_type)
    written = []
    if renderer is not None and getattr(renderer, 'batched', False):
        bs = int(cfg.train_dataloader.get('batch_size', 16))
        for n in range(args.num):
            samples = [dataset[(n * bs + i) % len(dataset)] for i in range(bs)]
            for name, img in renderer(cfg, samples):
                written.append(osp.join(args.output_dir, f'{model_type}_{n}_{name}.png'))
                cv2.imwrite(written[-1], img[..., ::-1])
    elif renderer is not None:
        for n in range(args.num):
            img = renderer(cfg, dataset[n % len(dataset)])
            written.append(osp.join(args.output_dir, f'{model_type}_{n}.png'))
            cv2.imwrite(written[-1], img[..., ::-1])
    else:
        classes = dataset.metainfo.get('classes')
        for n in range(args.num):
            written.append(osp.join(args.output_dir, f'{model_type}_{n}.png'))
            cv2.imwrite(written[-1], _draw_detection(dataset[n % len(dataset)], classes)[..., ::-1])
    for path in written:
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
