"""The momentum (EMA) encoder shared by MCL, SoCo, DetCo and PLRC."""
from typing import Any, Callable, Mapping, Optional, Union

import torch
from mmengine.dist import get_world_size
from mmengine.logging import MessageHub
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.utils import CosineEMA, batch_shuffle_ddp, batch_unshuffle_ddp
from torch import Tensor, nn

from mcl_plugin.registry import MODELS


def _unshuffle(out: Any, idx_unshuffle: Tensor) -> Any:
    """:func:`batch_unshuffle_ddp` on every tensor of a (nested) list / tuple."""
    if isinstance(out, Tensor):
        return batch_unshuffle_ddp(out, idx_unshuffle)
    if isinstance(out, (list, tuple)):
        return type(out)(_unshuffle(o, idx_unshuffle) for o in out)
    raise TypeError(f'cannot unshuffle a {type(out).__name__}; return tensors or lists of them')


@MODELS.register_module()
class MomentumEncoder(CosineEMA):
    """EMA copy of *named* online modules (the target / key encoder).

    The copies live in ``self.module``, an ``nn.ModuleDict``, so checkpoint keys say what they
    hold: ``target_net.module.backbone.*``, ``target_net.module.neck.*``, ... and
    ``target_net.steps``. The averaging is mmpretrain's / mmengine's, in mmengine's convention
    ``target = (1 - m) * target + m * online`` (the papers' 0.99 is ``m = 0.01``):

    - ``end_momentum`` given: mmpretrain :class:`CosineEMA`, ``m`` cosine-annealed from
      ``momentum`` to ``end_momentum`` over the runner's ``max_iters`` (BYOL; MCL, SoCo);
    - ``end_momentum=None``: mmengine :class:`ExponentialMovingAverage`, constant ``m`` (MoCo;
      DetCo, PLRC).

    It is an mmengine ``BaseAveragedModel``, so ``interval`` (set by ``EMAAccumulationHook``)
    and the ``steps`` counter behave as in mmpretrain's algorithms.

    Args:
        modules (Mapping[str, nn.Module]): Online modules by name, e.g.
            ``dict(backbone=..., neck=...)``; copied, and frozen.
        momentum (float): (Start) momentum ``m``.
        end_momentum (float, optional): Final momentum of the cosine schedule; None for a
            constant momentum. Defaults to None.
        interval (int): Update every ``interval`` calls. Defaults to 1.
    """

    def __init__(self,
                 modules: Mapping[str, nn.Module],
                 momentum: float,
                 end_momentum: Optional[float] = None,
                 interval: int = 1) -> None:
        super().__init__(nn.ModuleDict(modules),
                         momentum=momentum,
                         end_momentum=momentum if end_momentum is None else end_momentum,
                         interval=interval)
        self.cosine = end_momentum is not None

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        """mmpretrain's cosine update, or mmengine's constant one (``lerp_``)."""
        if self.cosine:
            super().avg_func(averaged_param, source_param, steps)
        else:
            ExponentialMovingAverage.avg_func(self, averaged_param, source_param, steps)

    @torch.no_grad()
    def update_parameters(self, model: Union[Mapping[str, nn.Module], nn.Module]) -> None:
        """One EMA step towards the online modules (the same names as at construction)."""
        if not isinstance(model, nn.Module):
            model = nn.ModuleDict(model)
        super().update_parameters(model)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Also read checkpoints written before the copies were named: ``module.<K>.*`` is
        the K-th module in construction order (``online_modules()`` keeps the old order)."""
        names = list(self.module)
        for key in [k for k in state_dict if k.startswith(prefix + 'module.')]:
            index, _, rest = key[len(prefix) + len('module.'):].partition('.')
            if index.isdigit() and int(index) < len(names):
                state_dict[f'{prefix}module.{names[int(index)]}.{rest}'] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def current_momentum(self) -> float:
        """The momentum of the next update (for logging as ``ema_momentum``).

        Read off :meth:`avg_func` itself (averaging 0 towards 1 gives ``m``), so the log
        cannot drift from the update; the start momentum while ``max_iters`` is unknown.
        """
        if self.cosine and not MessageHub.get_current_instance().get_info('max_iters'):
            return float(self.momentum)
        probe = torch.zeros((), dtype=torch.float64)
        self.avg_func(probe, torch.ones_like(probe), self.steps)
        return float(probe)

    @torch.no_grad()
    def forward(self,
                encode: Callable[..., Any],
                inputs: Tensor,
                *args,
                shuffle_bn: bool = False) -> Any:
        """The key-encoder pass: ``encode(self.module, inputs, *args)`` without gradient.

        Args:
            encode (Callable): Called with the ``ModuleDict`` of copies, ``inputs`` and
                ``args``; returns a tensor or a (nested) list / tuple of tensors, one row
                per row of ``inputs``.
            inputs (Tensor): ``(N, ...)`` batch.
            shuffle_bn (bool): MoCo's shuffling BN: with several processes, ``inputs`` are
                shuffled across ranks (mmpretrain ``batch_shuffle_ddp``) and every output is
                restored to this rank's order, so a query and its key never share per-GPU BN
                statistics. A no-op in one process. Defaults to False.
        """
        if not (shuffle_bn and get_world_size() > 1):
            return encode(self.module, inputs, *args)
        inputs, idx_unshuffle = batch_shuffle_ddp(inputs)
        return _unshuffle(encode(self.module, inputs, *args), idx_unshuffle)
