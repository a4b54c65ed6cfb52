"""Crop an image to a box carried in the results (e.g. an object instance)."""
from typing import Dict

from mmcv.transforms import BaseTransform

from mcl_plugin.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropToBox(BaseTransform):
    """Crop ``results['img']`` to ``results[key]`` = ``[x1, y1, x2, y2]`` (pixels, clipped).

    Args:
        key (str): Results key of the box. Defaults to ``'crop_box'``.
    """

    def __init__(self, key: str = 'crop_box') -> None:
        self.key = key

    def transform(self, results: Dict) -> Dict:
        if self.key not in results:
            raise KeyError(f'CropToBox needs results[{self.key!r}] (set by the dataset, e.g. '
                           'CocoObjectCropDataset)')
        img = results['img']
        h, w = img.shape[:2]
        x1, y1, x2, y2 = results[self.key]
        x1, y1 = int(max(0, min(w - 1, x1))), int(max(0, min(h - 1, y1)))
        x2, y2 = int(max(x1 + 1, min(w, round(x2)))), int(max(y1 + 1, min(h, round(y2))))
        results['img'] = img[y1:y2, x1:x2]
        results['img_shape'] = results['img'].shape[:2]
        return results
