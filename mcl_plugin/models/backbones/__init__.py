from .stem_pe import PEResNet, PESwinTransformer

__all__ = ['PEResNet', 'PESwinTransformer']
