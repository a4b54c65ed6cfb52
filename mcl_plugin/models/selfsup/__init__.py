from .mcl import MCL

__all__ = ['MCL']
