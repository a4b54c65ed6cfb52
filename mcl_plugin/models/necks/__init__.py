from .interpolated_pyramid import InterpolatedPyramid

__all__ = ['InterpolatedPyramid']
