"""The Spatial Transformer Network "blog" sampler, written out as the baseline to beat.

meshgrid over normalized [-1, 1] → matmul with theta → scale to pixels → floor →
clip → four fancy-index gathers → weights from the clipped corners, in float64.
It keeps the well-known bugs on purpose (it is a speed baseline, not a reference):
the pixel scaling uses W instead of W - 1, so the identity is not the identity, and the
weights come from clipped corners, so the borders go black.
"""

import numpy as np


def affine_grid(theta, height, width):
    """theta (N, 2, 3) in normalized coordinates → sampling grid (N, 2, H, W)."""
    x = np.linspace(-1.0, 1.0, width)
    y = np.linspace(-1.0, 1.0, height)
    xt, yt = np.meshgrid(x, y)
    grid = np.stack([xt.ravel(), yt.ravel(), np.ones(height * width)])  # (3, H*W)
    out = theta @ grid  # (N, 2, H*W)
    return out.reshape(len(theta), 2, height, width)


def bilinear_sampler(images, x, y):
    """images (N, H, W, C); x, y normalized (N, H, W) → (N, H, W, C) float64."""
    n, h, w, _ = images.shape
    x = 0.5 * (x + 1.0) * w  # the off-by-one: should be (w - 1)
    y = 0.5 * (y + 1.0) * h
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1, y1 = x0 + 1, y0 + 1
    x0, x1 = np.clip(x0, 0, w - 1), np.clip(x1, 0, w - 1)
    y0, y1 = np.clip(y0, 0, h - 1), np.clip(y1, 0, h - 1)
    b = np.arange(n)[:, None, None]
    ia, ib = images[b, y0, x0].astype(np.float64), images[b, y1, x0].astype(np.float64)
    ic, id_ = images[b, y0, x1].astype(np.float64), images[b, y1, x1].astype(np.float64)
    wa = ((x1 - x) * (y1 - y))[..., None]  # weights after clipping
    wb = ((x1 - x) * (y - y0))[..., None]
    wc = ((x - x0) * (y1 - y))[..., None]
    wd = ((x - x0) * (y - y0))[..., None]
    return wa * ia + wb * ib + wc * ic + wd * id_


def blog_warp(images, theta):
    n, h, w, _ = images.shape
    grid = affine_grid(theta, h, w)
    return bilinear_sampler(images, grid[:, 0], grid[:, 1])
