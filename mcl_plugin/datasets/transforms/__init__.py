from .color import HueSafeColorJitter, rotate_hue

__all__ = ['HueSafeColorJitter', 'rotate_hue']
