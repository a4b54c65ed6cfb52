"""Writing ``objects_coco/``: the rendered scenes of each split as JPEGs and COCO instance
annotations (RLE masks, tight boxes, pixel areas), and ``classes.txt``."""
import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from .catalog import FORMAT_VERSION
from .records import Cutout, Photo, _save_jpeg
from .scenes import SceneConfig, background_view, compose_scene


def coco_annotation(mask: np.ndarray, ann_id: int, image_id: int, category_id: int) -> dict:
    """COCO annotation of a binary mask: RLE segmentation, pixel area and tight box."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    area = int(mask_util.area(rle))
    bbox = [float(v) for v in mask_util.toBbox(rle)]
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(id=ann_id,
                image_id=image_id,
                category_id=category_id,
                segmentation=rle,
                area=area,
                bbox=bbox,
                iscrowd=0)


def build_split(split: str, num: int, backgrounds: List[Photo], cutouts: List[Cutout],
                classes: List[str], cfg: SceneConfig, seed: int,
                dest: Path) -> Tuple[dict, List[dict]]:
    """Renders one split: images in ``dest/<split>/`` and its COCO dict.

    Args:
        split (str): ``train`` or ``val``.
        num (int): Number of images.
        backgrounds (list[Photo]): Background photos of this split.
        cutouts (list[Cutout]): Cut-outs of this split.
        classes (list[str]): All class names (category ids follow this order, from 1).
        cfg (SceneConfig): Scene settings.
        seed (int): Random seed.
        dest (Path): ``objects_coco`` folder.

    Returns:
        tuple[dict, list[dict]]: COCO dict and manifest records.
    """
    pool: Dict[str, List[Cutout]] = defaultdict(list)
    for cutout in cutouts:
        pool[cutout.category].append(cutout)
    split_id = 0 if split == 'train' else 1
    order = np.random.default_rng([seed, 3, split_id]).permutation(len(backgrounds))
    loaded: Dict[str, Image.Image] = {}
    images, annotations, records = [], [], []
    for i in tqdm(range(num), desc=f'objects {split}', unit='img'):
        photo = backgrounds[order[i % len(order)]]
        if photo.key not in loaded:
            loaded[photo.key] = photo.load(long_side=max(cfg.size) * 5 // 2)
        rng = np.random.default_rng([seed, 4, split_id, i])
        bg, bg_op = background_view(loaded[photo.key], rng, cfg.size)
        image, layers, masks = compose_scene(bg, pool, rng, cfg)
        file_name = f'{split}_{i + 1:06d}.jpg'
        _save_jpeg(Image.fromarray(image), dest / split / file_name)
        images.append(dict(id=i + 1, file_name=file_name, width=cfg.size[0], height=cfg.size[1]))
        for layer, mask in zip(layers, masks):
            annotations.append(
                coco_annotation(mask,
                                len(annotations) + 1, i + 1,
                                classes.index(layer.cutout.category) + 1))
        records.append(
            dict(file=f'{split}/{file_name}',
                 operation=f'background {photo.key}: {bg_op}; objects pasted in order (annotated '
                 'as their visible part)',
                 background=photo.key,
                 objects=[
                     dict(key=layer.cutout.key, category=layer.cutout.category) for layer in layers
                 ],
                 sources=[photo.source.to_json()] +
                 [layer.cutout.source.to_json() for layer in layers]))
    coco = dict(info=dict(description=f'mcl_plugin objects_coco {split}: real photographed objects '
                          'with exact masks on real background photos (tools/prepare_data.py)',
                          version=str(FORMAT_VERSION)),
                licenses=[],
                images=images,
                annotations=annotations,
                categories=[
                    dict(id=i + 1, name=name, supercategory='object')
                    for i, name in enumerate(classes)
                ])
    return coco, records


def build_objects(backgrounds: Tuple[List[Photo], List[Photo]], cutouts: Tuple[List[Cutout],
                                                                               List[Cutout]],
                  nums: Tuple[int, int], cfg: SceneConfig, seed: int, dest: Path) -> List[dict]:
    """Writes ``objects_coco``: both splits, their annotations and ``classes.txt``.

    Args:
        backgrounds (tuple): Train and val background photos (disjoint).
        cutouts (tuple): Train and val cut-outs (disjoint).
        nums (tuple[int, int]): Train and val image counts.
        cfg (SceneConfig): Scene settings.
        seed (int): Random seed.
        dest (Path): Output folder.

    Returns:
        list[dict]: Manifest records.
    """
    classes = sorted({c.category for c in cutouts[0] + cutouts[1]})
    (dest / 'annotations').mkdir(parents=True, exist_ok=True)
    (dest / 'classes.txt').write_text('\n'.join(classes) + '\n')
    records = []
    for split, bgs, cuts, num in zip(('train', 'val'), backgrounds, cutouts, nums):
        if not bgs or not cuts:
            raise RuntimeError(f'no {"background" if not bgs else "object"} left for the '
                               f'{split} split')
        coco, recs = build_split(split, num, bgs, cuts, classes, cfg, seed, dest)
        with open(dest / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(coco, f, separators=(',', ':'))
        records += recs
    return records
