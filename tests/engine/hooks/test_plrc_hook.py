"""PLRCDistillWarmupHook: distillation off before the warm-up boundary, on from it."""
from types import SimpleNamespace

import pytest
import torch

from mcl_plugin.engine.hooks import PLRCDistillWarmupHook


def test_warmup_hook_switches_at_the_boundary():
    model = SimpleNamespace(set_distillation=lambda a: setattr(model, 'active', a))
    by_epoch = PLRCDistillWarmupHook(warmup=30, by_epoch=True)
    by_iter = PLRCDistillWarmupHook(warmup=5, by_epoch=False)
    for hook, key, values in ((by_epoch, 'epoch', [(0, False), (29, False),
                                                   (30, True)]), (by_iter, 'iter', [(4, False),
                                                                                    (5, True),
                                                                                    (6, True)])):
        for value, expected in values:
            runner = SimpleNamespace(model=model, epoch=0, iter=0)
            setattr(runner, key, value)
            hook.before_train_iter(runner, 0)
            assert model.active is expected
    with pytest.raises(TypeError, match='set_distillation'):
        by_epoch.before_train_iter(SimpleNamespace(model=torch.nn.Linear(1, 1), epoch=0), 0)
