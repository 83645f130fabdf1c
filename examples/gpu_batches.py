"""GPU batches: one transform per sample, on the device where the batch already is.

    python examples/gpu_batches.py        # CUDA when present, else the CPU

RandomAffine on an (N, C, H, W) tensor draws N transforms; the warp runs on the tensor's
device. For float tensors it is differentiable with respect to the images.
"""

import torch

import affine_aug as aa
from affine_aug.torch import RandomAffine, warp_affine


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    aug = RandomAffine("configs/strong.yaml", seed=0)
    batch = torch.rand(16, 3, 64, 64, device=device)  # a batch from your loader
    out = aug(batch)  # 16 different transforms
    assert out.shape == batch.shape and out.device == batch.device

    # the same with explicit, keyed matrices: sample on the CPU, warp on the device
    keys = torch.arange(16).numpy()
    m = aa.sample("configs/strong.yaml", keys=keys, size=(64, 64), seed=0).matrices
    x = batch.clone().requires_grad_(True)
    y = warp_affine(x, torch.as_tensor(m, device=device), border="reflect")
    y.mean().backward()  # gradients reach the images
    assert x.grad is not None and x.grad.shape == x.shape
    print(f"{device}: warped {tuple(out.shape)}; gradient {tuple(x.grad.shape)}")


if __name__ == "__main__":
    main()
