"""SoCoHead: the pair losses on constructed vectors, one predictor pass per online view."""
import torch
from torch import nn

from mcl_plugin.models.heads import SoCoHead


class CountingIdentity(nn.Module):
    """A predictor that returns its input (NonLinearNeck's list-in, tuple-out protocol)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return (x[0], )


def test_pair_losses_and_cosines_by_hand():
    head = SoCoHead(predictor=dict(type='NonLinearNeck', in_channels=2, hid_channels=4,
                                   out_channels=2, with_avg_pool=False),
                    loss=dict(type='CosineSimilarityLoss', shift_factor=0.0, scale_factor=2.0))
    head.predictor = CountingIdentity()
    e0, e1 = torch.tensor([[1., 0.]]), torch.tensor([[0., 1.]])
    diag = torch.tensor([[1., 1.]])
    online = {0: e0, 1: diag, 2: 3 * e0}
    target = {0: diag, 1: e0, 2: -e0}
    # V1 -> V2: cos(e0, e0) = 1; V2 -> V1: cos(diag, diag) = 1; V1 -> V3: cos(e0, -e0) = -1;
    # V3 -> V1: cos(3 e0, diag) = 1/sqrt(2); every term is -2 cos
    losses = head.loss(online, target, [(0, 1), (1, 0), (0, 2), (2, 0)])
    assert set(losses) == {'loss_v1_v2', 'cos_v1_v2', 'loss_v1_v3', 'cos_v1_v3'}
    assert torch.allclose(losses['loss_v1_v2'], torch.tensor(-4.))
    assert torch.allclose(losses['cos_v1_v2'], torch.tensor(1.))
    assert torch.allclose(losses['loss_v1_v3'], torch.tensor(2. - 2 * 0.5**0.5))
    assert torch.allclose(losses['cos_v1_v3'], torch.tensor((-1 + 0.5**0.5) / 2))
    assert head.predictor.calls == 3  # once per online view, not once per pair
    # the targets get no gradient, the online projections do
    z = e1.clone().requires_grad_()
    t = diag.clone().requires_grad_()
    head.loss({0: z}, {1: t}, [(0, 1)])['loss_v1_v2'].backward()
    assert z.grad is not None and t.grad is None
