from types import SimpleNamespace

import pytest
import torch

from mcl_plugin.engine.hooks import NaNGuardHook


def _runner(it=4):
    return SimpleNamespace(iter=it)


def test_finite_losses_pass_and_nan_loss_raises_with_the_key():
    hook = NaNGuardHook()
    hook.after_train_iter(_runner(), 0, outputs=dict(loss=torch.tensor(1.0),
                                                    pos_sim_level0=torch.tensor(float('nan'))))
    with pytest.raises(FloatingPointError, match=r'iteration 5: loss_level1=nan'):
        hook.after_train_iter(_runner(), 0, outputs=dict(loss_level0=torch.tensor(1.0),
                                                        loss_level1=torch.tensor(float('nan'))))
    with pytest.raises(FloatingPointError, match='loss=inf'):
        hook.after_train_iter(_runner(), 0, outputs=dict(loss=torch.tensor(float('inf'))))


def test_no_checkpoint_with_nan_weights():
    hook = NaNGuardHook()
    good = dict(state_dict={'a': torch.ones(2), 'n': torch.tensor(3)})
    hook.before_save_checkpoint(_runner(), good)
    bad = dict(state_dict={'backbone.conv1.weight': torch.tensor([1.0, float('nan')])})
    with pytest.raises(FloatingPointError, match='backbone.conv1.weight'):
        hook.before_save_checkpoint(_runner(), bad)
