from .color import HueSafeColorJitter, rotate_hue
from .crop import CropToBox

__all__ = ['HueSafeColorJitter', 'rotate_hue', 'CropToBox']
from .region_masks import GridRegionTwoView  # noqa: E402
__all__ += ['GridRegionTwoView']
from .jigsaw import JIGSAW_META_KEYS, GlobalLocalViews, JigsawPatches  # noqa: E402
__all__ += ['JIGSAW_META_KEYS', 'GlobalLocalViews', 'JigsawPatches']
from .soco import PackSoCoInputs, SoCoViews  # noqa: E402
__all__ += ['PackSoCoInputs', 'SoCoViews']
