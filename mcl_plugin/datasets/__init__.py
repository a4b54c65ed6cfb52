from .transforms import *  # noqa: F401,F403
from .unlabeled import UnlabeledImageDataset

__all__ = ['UnlabeledImageDataset']
