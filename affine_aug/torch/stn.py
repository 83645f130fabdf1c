"""Spatial Transformer layer (Jaderberg et al., 2015) on affine_aug's differentiable warper.

A localisation network looks at the input and regresses the parameters of a transform;
the transform becomes a forward pixel matrix (the library's convention: source pixel →
output pixel, ``(x, y)``, pixel centres on integers) and the input is warped with
:func:`affine_aug.torch.warp_affine` (bilinear weights from the unclamped coordinates,
explicit border mode): the grid generator and sampler of the paper, without the
reference code's off-by-one scaling, so identity parameters give the input back bit for
bit.

Parameters live in centred, isotropically normalised coordinates: a pixel ``(x, y)`` of
an ``H x W`` image is ``u = ((x - cx) / r, (y - cy) / r)`` with ``(cx, cy) = ((W-1)/2, (H-1)/2)``
and ``r = max(H, W) / 2``, so a rotation parameter is a true rotation of the picture. The
transform maps input ``u`` to output ``u' = A u + t`` (forward, as every matrix of the
library), i.e. in pixels::

    M = [[k A00, k A01, cx' + r' t_x - k (A00 cx + A01 cy)],
         [k A10, k A11, cy' + r' t_y - k (A10 cx + A11 cy)],
         [0,     0,     1]]                       with k = r' / r (output over input)

Families (the head's parameters ``p``; all zero = identity):

    "affine"       6   A = I + [[p0, p1], [p2, p3]],  t = (p4, p5)
    "rts"          4   A = exp(p1) R(p0),  t = (p2, p3)     R(a) = [[cos a, sin a], [-sin a, cos a]]
    "attention"    3   A = exp(p0) I,      t = (p1, p2)     (isotropic zoom and shift, the paper's)
    "translation"  2   A = I,              t = (p0, p1)

``R(a)`` turns the content counter-clockwise on screen by ``a`` radians (the library's sign
of ``rotate``); ``exp(p)`` > 1 enlarges the content; ``t`` moves it right / down by a
fraction ``r'`` of the output's half size.
"""

from __future__ import annotations

import torch
from torch import nn

from .functional import warp_affine

__all__ = ["FAMILIES", "SpatialTransformer", "default_localization", "small_cnn"]

FAMILIES = {"affine": 6, "rts": 4, "attention": 3, "translation": 2}


def default_localization(in_channels: int, features: int = 32) -> nn.Module:
    """A small conv net (any input size from 12 px): (N, C, H, W) → (N, ``features``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(8, 16, 5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(16 * 9, features),
        nn.ReLU(),
    )


class SpatialTransformer(nn.Module):
    """Learned affine warp of a batch: ``(N, C, H, W)`` → ``(N, C, H_out, W_out)``.

    Args:
        in_channels: channels of the input (for the default localisation network).
        out_size: ``(H_out, W_out)``; default the input's size.
        family: ``"affine"``, ``"rts"``, ``"attention"`` or ``"translation"`` (see the
            module docstring for each one's matrix).
        localization: a module mapping the input to ``(N, F)`` features; default
            :func:`default_localization`. A zero-initialised linear head turns the features
            into the family's parameters, so the layer starts as the identity.
        features: ``F``, the width of the localisation output (when it is yours, say it).
        interpolation, border, fill: as :func:`affine_aug.torch.warp_affine`.

    ``forward(x, return_matrices=False)`` returns the warped batch, and with
    ``return_matrices`` also the ``(N, 3, 3)`` forward pixel matrices (for
    ``transform_boxes`` / ``transform_points`` or pictures). Works on CPU and CUDA, with any
    batch size including 0, and under ``torch.compile(fullgraph=True)`` (the sampler is
    one custom op, ``affine_aug::warp``, with its backward in C on the CPU).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        out_size=None,
        family: str = "affine",
        localization: nn.Module | None = None,
        features: int = 32,
        interpolation: str = "bilinear",
        border: str = "edge",
        fill=0.0,
    ) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
        self.family = family
        self.out_size = None if out_size is None else (int(out_size[0]), int(out_size[1]))
        self.localization = localization if localization is not None else default_localization(in_channels, features)
        self.head = nn.Linear(features, FAMILIES[family])
        nn.init.zeros_(self.head.weight)  # identity at initialisation: every parameter 0
        nn.init.zeros_(self.head.bias)
        self.interpolation, self.border, self.fill = interpolation, border, fill

    def matrices(self, params: torch.Tensor, in_size, out_size) -> torch.Tensor:
        """Forward pixel matrices ``(N, 3, 3)`` from the family's parameters ``(N, P)``."""
        p = params
        zero = torch.zeros_like(p[:, 0])
        if self.family == "affine":
            a00, a01, a10, a11, tx, ty = 1 + p[:, 0], p[:, 1], p[:, 2], 1 + p[:, 3], p[:, 4], p[:, 5]
        elif self.family == "rts":
            s = torch.exp(p[:, 1])
            cos, sin = torch.cos(p[:, 0]), torch.sin(p[:, 0])
            a00, a01, a10, a11, tx, ty = s * cos, s * sin, -s * sin, s * cos, p[:, 2], p[:, 3]
        elif self.family == "attention":
            s = torch.exp(p[:, 0])
            a00, a01, a10, a11, tx, ty = s, zero, zero, s, p[:, 1], p[:, 2]
        else:
            a00, a01, a10, a11, tx, ty = zero + 1, zero, zero, zero + 1, p[:, 0], p[:, 1]
        (h, w), (ho, wo) = in_size, out_size
        cx, cy, r = (w - 1) / 2, (h - 1) / 2, max(h, w) / 2
        cxo, cyo, ro = (wo - 1) / 2, (ho - 1) / 2, max(ho, wo) / 2
        k = ro / r  # exactly 1 when the sizes agree: identity parameters give the identity matrix
        rows = [
            torch.stack([k * a00, k * a01, cxo + ro * tx - k * (a00 * cx + a01 * cy)], -1),
            torch.stack([k * a10, k * a11, cyo + ro * ty - k * (a10 * cx + a11 * cy)], -1),
            torch.stack([zero, zero, zero + 1], -1),
        ]
        return torch.stack(rows, 1)

    def forward(self, x: torch.Tensor, return_matrices: bool = False):
        in_size = tuple(x.shape[-2:])
        out_size = self.out_size or in_size
        m = self.matrices(self.head(self.localization(x)), in_size, out_size)
        y = warp_affine(x, m, out_size=out_size, interpolation=self.interpolation, border=self.border, fill=self.fill)
        return (y, m) if return_matrices else y


def small_cnn(in_channels: int, num_classes: int, size: int) -> nn.Module:
    """The small classifier of the experiments (``benchmarks/stn_digits.py``,
    ``scripts/train_gtsrb.py``): two 5x5 conv + pool stages and two linear layers,
    for square inputs of ``size`` pixels (>= 12).

    Each stage pools before its ReLU: max pooling commutes with the ReLU (both monotone),
    so the values and gradients are those of conv, ReLU, pool, and the ReLU sees a
    quarter of the elements."""
    side = ((size - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(16, 32, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * side * side, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )
