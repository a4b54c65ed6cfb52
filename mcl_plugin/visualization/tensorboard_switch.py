"""A TensorBoard backend that sits in the default runtime and is switched on by one option."""
from typing import Any

from mmengine.visualization import TensorboardVisBackend

from mcl_plugin.registry import VISBACKENDS


@VISBACKENDS.register_module()
class SwitchableTensorboardVisBackend(TensorboardVisBackend):
    """mmengine's ``TensorboardVisBackend`` that does nothing unless ``enabled``.

    ``configs/_base_/default_runtime.py`` lists it next to ``LocalVisBackend`` with
    ``enabled=False``, so every plugin config can turn TensorBoard on from the command line
    (``--cfg-options`` cannot build a new list of dicts)::

        --cfg-options visualizer.vis_backends.1.enabled=True

    The event files go to the run's ``vis_data/`` folder (next to ``scalars.json``), or to
    ``visualizer.vis_backends.1.save_dir`` when given. Disabled, it creates no writer and does
    not import tensorboard.

    Args:
        save_dir (str): Folder of the event files (the Visualizer fills in ``vis_data/``).
        enabled (bool): Write events. Defaults to False.
    """

    def __init__(self, save_dir: str, enabled: bool = False, **kwargs: Any) -> None:
        super().__init__(save_dir, **kwargs)
        self.enabled = enabled

    def add_config(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().add_config(*args, **kwargs)

    def add_graph(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().add_graph(*args, **kwargs)

    def add_image(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().add_image(*args, **kwargs)

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().add_scalar(*args, **kwargs)

    def add_scalars(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            super().add_scalars(*args, **kwargs)

    def close(self) -> None:
        if self.enabled:
            super().close()
