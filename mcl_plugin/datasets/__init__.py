from .transforms import *  # noqa: F401,F403
from .checked_coco import CheckedCocoDataset
from .object_crops import CocoObjectCropDataset
from .unlabeled import UnlabeledImageDataset, UnreadableImageError

__all__ = [
    'CheckedCocoDataset', 'CocoObjectCropDataset', 'UnlabeledImageDataset', 'UnreadableImageError'
]
from .proposal_dataset import ProposalImageDataset  # noqa: E402
__all__ += ['ProposalImageDataset']
