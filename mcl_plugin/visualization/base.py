"""The renderer interface: one class per method, registered under the algorithm's
``model.type``, built from the full config, given packed samples, returning one picture.

Example::

    renderer = build_renderer(cfg)                  # cfg: the whole Config
    samples = [dataset[i] for i in range(renderer.samples_per_image)]
    image = renderer.render(samples)                # (H, W, 3) uint8 RGB
"""
from typing import Sequence

import numpy as np
from mmengine.registry import Registry

from .drawing import DisplayConverter

#: Renderer classes by the ``model.type`` they draw (scope ``mcl_plugin``).
RENDERERS = Registry('renderer', scope='mcl_plugin', locations=['mcl_plugin.visualization'])


def _model_cfg(cfg, who: str):
    """``cfg.model``; a clear error when ``cfg`` is not a whole config (e.g. its ``model``)."""
    model_cfg = cfg.get('model') if hasattr(cfg, 'get') else None
    if not model_cfg or 'type' not in model_cfg:
        raise ValueError(f'{who} needs the full config (with a `model` dict that has a '
                         '`type`), not its `model` part')
    return model_cfg


class BaseRenderer:
    """Draws what a config's training pipeline feeds the model.

    Every renderer reads what it needs from the *full* config it is built with (``model`` for
    the algorithm's settings, ``model.data_preprocessor`` for the colours, ``train_dataloader``
    for the batch size), so all of them are built and called the same way.

    Args:
        cfg (Config | dict): The whole config (with ``model``), not its ``model`` part.
        seed (int): Seed of anything random the renderer draws (montage shuffles, sampled
            points), so a picture is reproducible. Defaults to 0.

    Attributes:
        model_cfg: ``cfg.model``.
        display (DisplayConverter): Image tensors to display RGB with the config's data
            preprocessor (the pipeline's images are BGR).
    """

    def __init__(self, cfg, seed: int = 0) -> None:
        self.cfg = cfg
        self.model_cfg = _model_cfg(cfg, type(self).__name__)
        self.seed = int(seed)
        self.display = DisplayConverter.from_config(cfg)

    @property
    def samples_per_image(self) -> int:
        """How many dataset samples :meth:`render` draws into one picture."""
        return 1

    def render(self, samples: Sequence[dict]) -> np.ndarray:
        """Draw ``samples`` (``samples_per_image`` outputs of the training pipeline, packed).

        Returns:
            np.ndarray: ``(H, W, 3)`` uint8 RGB.
        """
        raise NotImplementedError

    def _one(self, samples: Sequence[dict]) -> dict:
        """The single sample of a one-sample renderer (a bare dict is accepted too)."""
        if isinstance(samples, dict):
            return samples
        if len(samples) != 1:
            raise ValueError(f'{type(self).__name__} draws one sample per picture, got '
                             f'{len(samples)}')
        return samples[0]


def build_renderer(cfg, seed: int = 0) -> BaseRenderer:
    """The renderer registered for ``cfg.model.type`` (scope prefix ignored), else the
    :class:`~mcl_plugin.visualization.generic_vis.GenericRenderer` (mmdet ground truth or
    plain views)."""
    import mcl_plugin.visualization  # noqa: F401 - registers the renderers
    model_type = str(_model_cfg(cfg, 'build_renderer').type).split('.')[-1]
    cls = RENDERERS.get(model_type) or RENDERERS.get('Generic')
    return cls(cfg, seed=seed)


__all__ = ['RENDERERS', 'BaseRenderer', 'build_renderer']
