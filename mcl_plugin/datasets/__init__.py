from .transforms import *  # noqa: F401,F403
from .object_crops import CocoObjectCropDataset
from .unlabeled import UnlabeledImageDataset

__all__ = ['CocoObjectCropDataset', 'UnlabeledImageDataset']
from .proposal_dataset import ProposalImageDataset  # noqa: E402
__all__ += ['ProposalImageDataset']
