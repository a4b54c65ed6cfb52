"""Renderer of configs without a method-specific one: mmdet samples (``PackDetInputs``) with
their ground-truth boxes, masks and class names; any other sample as its views side by side."""
from typing import Sequence

import numpy as np

from .base import RENDERERS, BaseRenderer
from .drawing import as_numpy, draw_box, hstack, id_colour

GAP = 8  #: white columns between views
MASK_ALPHA = 0.5  #: weight of an instance's colour over its mask


@RENDERERS.register_module(name='Generic')
class GenericRenderer(BaseRenderer):
    """Used for every ``model.type`` without a registered renderer (mmdet fine-tuning configs,
    mmpretrain baselines).

    - a sample with ``data_samples.gt_instances``: the image, every instance mask blended with
      the instance's colour, its box and its class name (``train_dataloader.dataset``'s
      ``metainfo.classes``, else the dataset class's ``METAINFO``, else the label index);
    - otherwise: the sample's view(s) side by side.
    """

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        sample = self._one(samples)
        inputs = sample['inputs']
        if isinstance(inputs, (list, tuple)):
            return hstack([self.display.packed(v) for v in inputs], GAP)
        img = self.display.packed(inputs)
        ds = sample.get('data_samples')
        if ds is None or 'gt_instances' not in ds:
            return img
        inst = ds.gt_instances
        classes = self._classes()
        if 'masks' in inst:
            masks = inst.masks.to_ndarray() if hasattr(inst.masks, 'to_ndarray') else inst.masks
            for i, m in enumerate(as_numpy(masks).astype(bool)):
                colour = np.asarray(id_colour(i), np.float32)
                img[m] = ((1 - MASK_ALPHA) * img[m] + MASK_ALPHA * colour).astype(np.uint8)
        boxes = inst.bboxes.tensor if hasattr(inst.bboxes, 'tensor') else inst.bboxes
        for i, (box, label) in enumerate(zip(as_numpy(boxes), as_numpy(inst.labels))):
            name = classes[int(label)] if classes else str(int(label))
            draw_box(img, box, id_colour(i), 2, name)
        return img

    def _classes(self):
        """Class names: the dataset config's ``metainfo``, else its class's ``METAINFO``."""
        from mmengine.registry import DATASETS
        dataset = (self.cfg.get('train_dataloader') or {}).get('dataset') or {}
        classes = (dataset.get('metainfo') or {}).get('classes')
        if not classes and isinstance(dataset.get('type'), str):
            cls = DATASETS.get(dataset['type'])
            classes = getattr(cls, 'METAINFO', {}).get('classes')
        return list(classes) if classes else None
