"""DataLoader workers: the same augmented batches with 0 or 2 workers, any batch size.

    python examples/dataloader_workers.py

AugmentedDataset keys item i of epoch e by (seed, e, i) alone, so neither the number of
workers, nor the batch size, nor the order in which workers finish changes a pixel.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from affine_aug.torch import AugmentedDataset


class TinyImages(torch.utils.data.Dataset):
    """24 random 3x32x32 uint8 images with a box each, and a label."""

    def __init__(self, n=24):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = tv_tensors.Image(self.images[i])
        box = tv_tensors.BoundingBoxes([[8, 8, 24, 24]], format="XYXY", canvas_size=(32, 32))
        return image, box, i % 3


def epoch_batches(dataset, workers, batch_size):
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    return torch.cat([images for images, _, _ in loader])


def main():
    data = AugmentedDataset(TinyImages(), "configs/mild.yaml", seed=0)
    for epoch in range(2):
        data.set_epoch(epoch)  # new draws each epoch, the same in every worker
        one = epoch_batches(data, workers=0, batch_size=8)
        two = epoch_batches(data, workers=2, batch_size=5)
        assert torch.equal(one, two), "results must not depend on workers or batch size"
        print(f"epoch {epoch}: {len(one)} images, identical with 0 and 2 workers")
    image, box, label = data[3]
    print("item 3:", tuple(image.shape), "box", np.round(box.numpy(), 1).tolist(), "label", label)


if __name__ == "__main__":
    main()
