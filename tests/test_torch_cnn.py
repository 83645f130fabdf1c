"""The experiments' small CNN pools before its ReLUs: the same values and gradients as
conv, ReLU, pool (max pooling commutes with the ReLU)."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from affine_aug.torch.stn import small_cnn  # noqa: E402


def _relu_then_pool(net: nn.Sequential) -> nn.Sequential:
    """The same layers (shared weights) in the order conv, ReLU, pool."""
    c1, p1, r1, c2, p2, r2, *rest = net
    assert isinstance(p1, nn.MaxPool2d) and isinstance(r1, nn.ReLU)
    return nn.Sequential(c1, r1, p1, c2, r2, p2, *rest)


@pytest.mark.parametrize("channels_last", [False, True])
def test_pool_before_relu_gives_the_same_values_and_gradients(channels_last):
    torch.manual_seed(0)
    net = small_cnn(1, 10, 40)
    ref = _relu_then_pool(net)
    x = torch.randn(6, 1, 40, 40)
    x[0] = 0.0  # ties: windows of zeros before and after the ReLU
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    outs, grads = [], []
    for model in (net, ref):
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.square().sum().backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad.clone() for p in net.parameters()])
        net.zero_grad()
    assert torch.equal(outs[0], outs[1])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
