"""Renderers that draw what a pre-training pipeline feeds the model (used by
``tools/browse_dataset.py``).

A renderer takes the model config (``ConfigDict``), one sample after the data pipeline (the
dict ``PackInputs`` produced: ``inputs`` = list of CHW uint8 tensors, ``data_samples``), and
returns an ``HxWx3`` uint8 RGB image. Register it under the algorithm's ``model.type``.
"""
from typing import Callable, Dict

RENDERERS: Dict[str, Callable] = {}


def register_renderer(*model_types: str) -> Callable:
    """Decorator: ``@register_renderer('MCL')``."""

    def wrap(fn: Callable) -> Callable:
        for name in model_types:
            RENDERERS[name] = fn
        return fn

    return wrap


from . import mcl_vis  # noqa: E402,F401

__all__ = ['RENDERERS', 'register_renderer']
from . import plrc_vis  # noqa: E402,F401
from . import detco_vis  # noqa: E402,F401
from . import soco_vis  # noqa: E402,F401
from .tensorboard_switch import SwitchableTensorboardVisBackend  # noqa: E402,F401
