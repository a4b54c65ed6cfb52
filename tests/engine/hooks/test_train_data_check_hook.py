"""TrainDataCheckHook on a real mmengine Runner (issue 21: too few images, batch below minimum)."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mcl_plugin  # noqa: F401  registers the hook


class _Ones(Dataset):

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.ones(1))


class _Contrastive(BaseModel):
    """Declares a minimum batch like MCL does; trains a single weight."""
    min_images_per_batch = 2
    min_images_reason = 'its negatives are the other images of the batch.'

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(1, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.w(torch.stack(inputs)).pow(2).mean())


def _train(tmp_path, images: int, batch_size: int) -> None:
    runner = Runner(
        model=_Contrastive(),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Ones(images), batch_size=batch_size, num_workers=0,
                              drop_last=True, sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='TrainDataCheckHook')],
        default_scope='mcl_plugin',
        default_hooks=dict(checkpoint=None, logger=None),
        experiment_name=f'check_{images}_{batch_size}')
    runner.train()


def test_fewer_images_than_the_batch_says_both_numbers(tmp_path):
    with pytest.raises(ValueError, match=r'has 3 image\(s\), fewer than one batch '
                       r'\(train_dataloader.batch_size=4, drop_last=True\)'):
        _train(tmp_path, images=3, batch_size=4)


def test_batch_below_the_algorithm_minimum_is_refused(tmp_path):
    with pytest.raises(ValueError, match='_Contrastive needs at least 2 images per batch.*'
                       'batch_size=1.*negatives are the other images'):
        _train(tmp_path, images=8, batch_size=1)


def test_a_valid_loader_trains(tmp_path):
    _train(tmp_path, images=3, batch_size=2)
