"""Renderers that draw what a pre-training pipeline feeds the model (used by
``tools/browse_dataset.py``), the drawing helpers they share, and the TensorBoard backend.

A renderer is a :class:`BaseRenderer` subclass registered in :data:`RENDERERS` under the
algorithm's ``model.type``. It is built from the full config and draws
``renderer.samples_per_image`` packed samples (the dicts ``PackInputs`` produces) into one
``HxWx3`` uint8 RGB image::

    renderer = build_renderer(cfg)
    image = renderer.render([dataset[i] for i in range(renderer.samples_per_image)])
"""
from .base import RENDERERS, BaseRenderer, build_renderer
from .detco_vis import DetCoRenderer
from .generic_vis import GenericRenderer
from .mcl_vis import MCLRenderer
from .plrc_vis import PLRCRenderer
from .soco_vis import SoCoRenderer
from .tensorboard_switch import SwitchableTensorboardVisBackend

__all__ = [
    'RENDERERS', 'BaseRenderer', 'build_renderer', 'MCLRenderer', 'SoCoRenderer',
    'DetCoRenderer', 'PLRCRenderer', 'GenericRenderer', 'SwitchableTensorboardVisBackend'
]
