"""Ray Data: map_batches with AffineAugment, keyed by a column of the data.

    python examples/ray_data.py           # starts a local Ray with 1 CPU (a few seconds)

Rows carry their own key, so partitioning, block size and the number of Ray workers
never change the result.
"""

import numpy as np
import ray

from affine_aug.ray import AffineAugment


def main():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        rng = np.random.default_rng(0)
        rows = [
            {"image": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "key": k, "label": k % 3} for k in range(16)
        ]
        ds = ray.data.from_items(rows)
        aug = AffineAugment("configs/mild.yaml", seed=0, size=(16, 16), return_params=True)
        small = ds.repartition(4).map_batches(aug, batch_format="numpy", batch_size=3).take_all()
        large = ds.map_batches(aug, batch_format="numpy", batch_size=16).take_all()
        a, b = ({int(r["key"]): r["image"] for r in out} for out in (small, large))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        print(
            f"{len(a)} rows of {a[0].shape}, equal for 4 blocks of batch 3 and one block of batch 16; "
            f"each row has its (3, 3) matrix: {small[0]['matrix'].shape}"
        )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
