from .mcl import MCL
from .mcl_supervised import MCLSupervised
from .montage_base import MontageSupervisor

__all__ = ['MCL', 'MCLSupervised', 'MontageSupervisor']
from .plrc import PLRC  # noqa: E402
__all__ += ['PLRC']
from .detco import DetCo  # noqa: E402
__all__ += ['DetCo']
from .soco import SoCo  # noqa: E402
__all__ += ['SoCo']
