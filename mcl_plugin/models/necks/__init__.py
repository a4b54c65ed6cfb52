from .interpolated_pyramid import InterpolatedPyramid

__all__ = ['InterpolatedPyramid']
from .plrc_neck import PLRCDenseNeck  # noqa: E402
__all__ += ['PLRCDenseNeck']
from .detco_neck import DetCoNeck  # noqa: E402
__all__ += ['DetCoNeck']
