"""Colour jitter that works with numpy >= 2.

mmcv 2.1's ``adjust_hue`` computes ``np.uint8(hue_factor * 255)``, which numpy 2 rejects for
negative factors (``OverflowError``), so mmpretrain's ``ColorJitter`` with ``hue > 0`` crashes
half of the time. This subclass keeps mmpretrain's parameter sampling and order and rotates the
hue channel with modular integer arithmetic instead.
"""
from typing import Dict

import cv2
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter

from mcl_plugin.registry import TRANSFORMS


def rotate_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """Shift the hue of a BGR ``uint8`` image by ``hue_factor`` of a full turn (-0.5..0.5)."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor must be in [-0.5, 0.5], got {hue_factor}')
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    shift = int(round(hue_factor * 255))
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


@TRANSFORMS.register_module()
class HueSafeColorJitter(ColorJitter):
    """mmpretrain ``ColorJitter`` (same arguments) whose hue step works under numpy 2."""

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        order, brightness, contrast, saturation, hue = self._rand_params()
        for index in order:
            if index == 0 and brightness is not None:
                img = mmcv.adjust_brightness(img, brightness, backend=self.backend)
            elif index == 1 and contrast is not None:
                img = mmcv.adjust_contrast(img, contrast, backend=self.backend)
            elif index == 2 and saturation is not None:
                img = mmcv.adjust_color(img, alpha=saturation, backend=self.backend)
            elif index == 3 and hue is not None:
                img = rotate_hue(img, hue)
        results['img'] = img
        return results
