import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")
import PIL.Image  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

import affine_aug as aa  # noqa: E402
from affine_aug.torch import AugmentedDataset, RandomAffine, warp_affine  # noqa: E402
from conftest import sampled_matrices  # noqa: E402

BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
CFG = {"rotate": [-30, 30], "scale": [0.8, 1.2], "translate": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}}


def test_import_affine_aug_does_not_import_torch():
    code = "import sys, affine_aug; affine_aug.warp_affine; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_torch_matches_numpy(device, border, interpolation):
    x = torch.rand(3, 2, 17, 21, dtype=torch.float32)
    m = sampled_matrices(CFG, 3, (17, 21))
    y = warp_affine(
        x.to(device), m, out_size=(15, 23), border=border, interpolation=interpolation, fill=[0.2, 0.7]
    ).cpu()
    ref = aa.warp_affine(
        x.permute(0, 2, 3, 1).numpy(),
        m,
        out_size=(15, 23),
        border=border,
        interpolation=interpolation,
        fill=[0.2, 0.7],
        backend="numpy",
    )
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).numpy(), ref, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_uint8_rounds_and_agrees(device):
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    m = sampled_matrices(CFG, 2, (16, 16))
    y = warp_affine(x.to(device), m).cpu()
    ref = aa.warp_affine(x.permute(0, 2, 3, 1).numpy(), m, backend="numpy")
    assert y.dtype == torch.uint8
    assert np.abs(y.permute(0, 2, 3, 1).numpy().astype(int) - ref).max() <= 1
    assert torch.equal(warp_affine(x.to(device), torch.eye(3)).cpu(), x)


def test_single_image_and_exact_rot90():
    x = torch.rand(3, 8, 8)
    m = aa.affine_matrix((8, 8), rotate=90)
    assert torch.equal(warp_affine(x, m), torch.rot90(x, 1, dims=(1, 2)))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_gradcheck_images_and_matrices(interpolation):
    x = torch.rand(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    m = torch.tensor(
        sampled_matrices(CFG, 2, (6, 7))[:, :2], dtype=torch.float64, requires_grad=True
    )  # (N, 2, 3): every entry is free
    for border in ("constant", "reflect"):
        assert torch.autograd.gradcheck(
            lambda a, b, border=border: warp_affine(a, b, border=border, fill=0.5, interpolation=interpolation),
            (x, m),
            eps=1e-6,
            atol=1e-5,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float32])
@pytest.mark.parametrize("border", ["constant", "edge", "wrap"])
def test_antialias_matches_numpy(device, dtype, border):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 40, 37, generator=g) * (255 if dtype == torch.uint8 else 1000 if dtype == torch.uint16 else 1)
    x = x.to(dtype)
    m = aa.affine_matrix((40, 37), rotate=[0.0, 20.0, -50.0], scale=[[0.35, 0.55], [0.6, 0.6], [1.5, 1.5]])
    y = warp_affine(x.to(device), m, out_size=(20, 19), border=border, fill=3, antialias=True).cpu()
    ref = aa.warp_affine(
        x.permute(0, 2, 3, 1).numpy(), m, out_size=(20, 19), border=border, fill=3, antialias=True, backend="numpy"
    )
    diff = np.abs(y.permute(0, 2, 3, 1).numpy().astype(np.float64) - ref)
    assert diff.max() <= (1 if dtype != torch.float32 else 1e-4)
    plain = warp_affine(x.to(device), m, out_size=(20, 19), border=border, fill=3).cpu()
    assert torch.equal(y[2], plain[2])  # scale 1.5 shrinks nothing: the plain warp


def test_random_affine_antialias_and_bicubic():
    img = torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8)
    cfg = {"scale": [0.3, 0.5], "rotate": [-30, 30]}
    t = RandomAffine(cfg, seed=3, antialias=True, interpolation="bicubic")
    assert "antialias=True" in repr(t)
    out = t(img)
    m = RandomAffine(cfg, seed=3).make_params([img])["matrices"]
    ref = aa.warp_affine(img.permute(1, 2, 0).numpy()[None], m[:1], antialias=True, interpolation="bicubic")[0]
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), ref)
    f = RandomAffine(cfg, seed=3, antialias=True, interpolation="bicubic")(img.float())  # the torch path
    assert (
        np.abs(f.clamp(0, 255).permute(1, 2, 0).numpy() - ref).max() <= 1.5
    )  # float: no rounding between blur and warp
    with pytest.raises(ValueError, match="antialias must be True or False, got 'yes'"):
        RandomAffine(cfg, antialias="yes")


def test_spatial_transformer_learns_a_shift():
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    img = torch.exp(-((x - 7) ** 2 + (y - 8) ** 2) / 8)[None, None]
    target = warp_affine(img, aa.affine_matrix((16, 16), translate=(2, -1)))
    t = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.1)
    for _ in range(200):
        m = torch.eye(3).clone()
        m = torch.cat([torch.cat([torch.eye(2), t[:, None]], 1), torch.tensor([[0.0, 0, 1]])], 0)
        loss = ((warp_affine(img, m[None]) - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(t.detach().numpy(), [2, -1], atol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(images=torch.zeros(2, 3)), r"images must have shape \(N, C, H, W\) or \(C, H, W\)"),
        (
            dict(images=torch.zeros(1, 3, 4, 4, dtype=torch.bool)),
            r"images dtype must be an integer or floating point type for bilinear",
        ),
        (dict(matrices=torch.eye(3).expand(3, 3, 3)), r"got 3 matrices for 2 images"),
        (dict(matrices=torch.zeros(2, 2, 3)), r"singular"),
        (dict(border="zeros"), r"unknown border 'zeros'"),
        (dict(fill=[1, 2]), r"fill must be a number or 3 numbers"),
        (dict(out_size=(0, 3)), r"out_size must be a pair of positive integers"),
    ],
)
def test_warp_bad_input(kwargs, match):
    args = dict(images=torch.zeros(2, 3, 4, 4), matrices=torch.eye(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        warp_affine(args.pop("images"), args.pop("matrices"), **args)


# --------------------------------------------------------------------------- RandomAffine


def test_types_in_same_type_out():
    t = RandomAffine(CFG, seed=0)
    pil = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    out = t(pil)
    assert isinstance(out, PIL.Image.Image) and out.size == (30, 20) and out.mode == "RGB"
    arr = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    assert isinstance(t(arr), np.ndarray) and t(arr).shape == (20, 30)
    ten = torch.rand(3, 20, 30)
    assert type(t(ten)) is torch.Tensor and t(ten).shape == (3, 20, 30)
    img = tv_tensors.Image(torch.rand(3, 20, 30))
    assert isinstance(t(img), tv_tensors.Image)


def test_image_and_targets_share_one_transform_and_boxes_follow_a_rectangle():
    img = torch.zeros(1, 64, 64)
    img[0, 20:30, 10:40] = 1.0  # rectangle: x in [10, 40), y in [20, 30)
    boxes = tv_tensors.BoundingBoxes([[10, 20, 40, 30]], format="XYXY", canvas_size=(64, 64))
    mask = tv_tensors.Mask((img[0] > 0).long() * 3)
    kp = tv_tensors.KeyPoints([[10.0, 20.0], [39.0, 29.0]], canvas_size=(64, 64))
    t = RandomAffine({"rotate": [-40, 40], "scale": [0.7, 1.2]}, seed=3)
    for _ in range(5):
        o_img, o_boxes, o_mask, o_kp = t(tv_tensors.Image(img), boxes, mask, kp)
        ys, xs = torch.nonzero(o_img[0] > 0.5, as_tuple=True)
        x1, y1, x2, y2 = o_boxes[0].tolist()
        assert x1 - 1 <= xs.min() and xs.max() <= x2 and y1 - 1 <= ys.min() and ys.max() <= y2
        assert set(torch.unique(o_mask).tolist()) <= {0, 3}  # nearest: the label set survives
        my, mx = torch.nonzero(o_mask[0] if o_mask.ndim == 3 else o_mask, as_tuple=True)
        assert abs(float(mx.float().mean()) - float(xs.float().mean())) < 1.5
        px, py = o_kp[0].tolist()
        assert x1 - 1 <= px <= x2 and y1 - 1 <= py <= y2


@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH", "XYWHR", "CXCYWHR", "XYXYXYXY"])
def test_every_box_format(fmt):
    # box over x in [4, 12), y in [10, 20); a horizontal flip of a 32-wide image maps it to x in [20, 28)
    F = v2.functional
    rotated = fmt in ("XYWHR", "CXCYWHR", "XYXYXYXY")
    if rotated:
        src = tv_tensors.BoundingBoxes(
            [[4.0, 10.0, 12.0, 10.0, 12.0, 20.0, 4.0, 20.0]], format="XYXYXYXY", canvas_size=(32, 32)
        )
    else:
        src = tv_tensors.BoundingBoxes([[4.0, 10.0, 12.0, 20.0]], format="XYXY", canvas_size=(32, 32))
    boxes = F.convert_bounding_box_format(src, new_format=getattr(tv_tensors.BoundingBoxFormat, fmt))
    t = RandomAffine({"flip": {"horizontal": 1}}, seed=0)
    out = t(tv_tensors.Image(torch.zeros(3, 32, 32)), boxes)[1]
    assert out.format == boxes.format and isinstance(out, tv_tensors.BoundingBoxes)
    if rotated:
        corners = F.convert_bounding_box_format(out, new_format=tv_tensors.BoundingBoxFormat.XYXYXYXY)
        got = sorted(map(tuple, np.round(corners.as_subclass(torch.Tensor).numpy().reshape(4, 2), 4).tolist()))
        assert got == sorted([(20.0, 10.0), (28.0, 10.0), (28.0, 20.0), (20.0, 20.0)])
    else:
        back = F.convert_bounding_box_format(out, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        np.testing.assert_allclose(back.as_subclass(torch.Tensor).numpy(), [[20.0, 10.0, 28.0, 20.0]], atol=1e-4)


def test_boxes_are_clamped_to_the_canvas():
    boxes = tv_tensors.BoundingBoxes([[0, 0, 32, 32]], format="XYXY", canvas_size=(32, 32))
    out = RandomAffine({"rotate": 45}, seed=0)(tv_tensors.Image(torch.zeros(3, 32, 32)), boxes)[1]
    assert out.as_subclass(torch.Tensor).tolist() == [[0, 0, 32, 32]]
    out = RandomAffine({"rotate": 45}, seed=0, clamp_boxes=False)(tv_tensors.Image(torch.zeros(3, 32, 32)), boxes)[1]
    assert out.as_subclass(torch.Tensor).min() < 0


def test_batched_input_gets_per_sample_transforms():
    t = RandomAffine(CFG, seed=0)
    x = torch.rand(1, 3, 24, 24).expand(6, 3, 24, 24).contiguous()
    out = t(x)
    assert out.shape == x.shape
    for i in range(1, 6):
        assert not torch.allclose(out[i], out[0])
    # a batched Image with batched masks: each pair shares its sample's transform
    masks = tv_tensors.Mask((x[:, 0] > 0.5).long())
    oi, om = t(tv_tensors.Image(x), masks)
    assert om.shape == masks.shape


def test_seeded_sequence_and_pickle():
    x = torch.rand(3, 16, 16)
    a, b = RandomAffine(CFG, seed=7), RandomAffine(CFG, seed=7)
    seq_a = [a(x) for _ in range(3)]
    seq_b = [b(x) for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(seq_a, seq_b))
    assert not torch.equal(seq_a[0], seq_a[1])
    c = pickle.loads(pickle.dumps(RandomAffine(CFG, seed=7)))
    assert torch.equal(c(x), seq_a[0])


def test_in_compose_and_uint8_cpu_uses_kernel():
    t = v2.Compose([v2.ToImage(), RandomAffine("gtsrb", seed=0), v2.ToDtype(torch.float32, scale=True)])
    out = t(PIL.Image.new("RGB", (32, 32), (200, 10, 10)))
    assert out.dtype == torch.float32 and out.shape == (3, 32, 32)


def test_bad_config_rejected_at_construction():
    with pytest.raises(aa.ConfigError, match=r"rotaton: unknown key 'rotaton' \(did you mean 'rotate'\?\)"):
        RandomAffine({"rotaton": 3})
    with pytest.raises(aa.ConfigError, match=r"config file not found"):
        RandomAffine("no_such_preset")
    with pytest.raises(ValueError, match=r"unknown interpolation"):
        RandomAffine(CFG, interpolation="cubic")


# --------------------------------------------------------------------------- datasets


class Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        img = tv_tensors.Image(torch.rand(3, 16, 16, generator=g))
        return img, {
            "label": i % 3,
            "boxes": tv_tensors.BoundingBoxes([[2, 2, 10, 10]], format="XYXY", canvas_size=(16, 16)),
        }


def _collect(ds, workers, batch_size, shuffle_seed=None):
    gen = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, num_workers=workers, shuffle=gen is not None, generator=gen, collate_fn=lambda b: b
    )
    return sorted((target["label"], float(img.sum())) for batch in dl for img, target in batch)


def test_augmented_dataset_is_keyed():
    ds = AugmentedDataset(Toy(), CFG, seed=1)
    direct = [ds[i] for i in range(len(ds))]
    assert direct[0][1]["label"] == 0 and isinstance(direct[0][1]["boxes"], tv_tensors.BoundingBoxes)
    a = _collect(ds, workers=0, batch_size=5)
    b = _collect(ds, workers=2, batch_size=3, shuffle_seed=4)
    assert a == b  # the same per-item results with 0 or 2 workers, other batching and shuffling
    ds.set_epoch(1)
    assert _collect(ds, workers=0, batch_size=4) != a  # another epoch differs
    ds.set_epoch(0)
    assert torch.equal(ds[5][0], direct[5][0])
    with pytest.raises(ValueError, match="epoch must be an integer"):
        ds.set_epoch(-1)


class Same(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(torch.arange(3 * 12 * 12, dtype=torch.float32).reshape(3, 12, 12))


def test_workers_never_repeat_each_other():
    ds = Same(RandomAffine(CFG, seed=0))
    outs = [x for b in torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2) for x in b]
    sums = {round(float(x.sum()), 3) for x in outs}
    assert len(sums) == 8  # two workers, each with its own stream: no duplicates


def test_video_frames_share_their_sample_transform():
    frame = torch.rand(3, 20, 20)
    video = tv_tensors.Video(frame.expand(4, 3, 20, 20).contiguous())  # (T, C, H, W), identical frames
    out = RandomAffine(CFG, seed=2)(video)
    assert isinstance(out, tv_tensors.Video) and out.shape == video.shape
    for t in range(1, 4):
        assert torch.equal(out[t], out[0])
    assert not torch.equal(out[0], frame)
    batched = tv_tensors.Video(torch.stack([video, video]))  # (N, T, C, H, W): one transform per video
    ob = RandomAffine(CFG, seed=2)(batched)
    assert torch.equal(ob[0, 0], ob[0, 3]) and not torch.equal(ob[0, 0], ob[1, 0])


# --------------------------------------------------------------------------- torchvision conformance (issue items)


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (5, 0, 3, 8, 8), (0, 5, 3, 8, 8)])
def test_empty_batches_come_back_empty(shape):
    t = RandomAffine("strong", seed=0)
    for x in (torch.zeros(shape, dtype=torch.uint8), tv_tensors.Video(torch.zeros(shape))):
        y = t(x)
        assert y.shape == x.shape and type(y) is type(x)


def test_numpy_arrays_pass_through_next_to_an_image():
    t = RandomAffine({"rotate": 90}, seed=0)
    ann = np.arange(12, dtype=np.float32).reshape(3, 4)
    img = torch.arange(3 * 4 * 4, dtype=torch.uint8).reshape(3, 4, 4)
    out = t({"ann": ann, "img": img, "vec": np.arange(5)})
    assert out["ann"] is ann and out["vec"].shape == (5,)
    assert torch.equal(out["img"], torch.rot90(img, 1, dims=(1, 2)))
    alone = t(np.arange(16, dtype=np.uint8).reshape(4, 4))  # a numpy image alone is still the image
    assert np.array_equal(alone, np.rot90(np.arange(16, dtype=np.uint8).reshape(4, 4)))
    pil = PIL.Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    out = t((pil, ann))
    assert out[1] is ann


@pytest.mark.parametrize("mode, clamped", [("soft", True), ("hard", True), (None, False)])
def test_boxes_follow_their_clamping_mode(mode, clamped):
    boxes = tv_tensors.BoundingBoxes([[0.0, 0.0, 32.0, 32.0]], format="XYXY", canvas_size=(32, 32), clamping_mode=mode)
    out = RandomAffine({"rotate": 45}, seed=0)(tv_tensors.Image(torch.zeros(3, 32, 32)), boxes)[1]
    inside = bool((out[:, :2] >= 0).all() and (out[:, 2:] <= 32).all())
    assert inside == clamped
    forced = RandomAffine({"rotate": 45}, seed=0, clamp_boxes=True)(tv_tensors.Image(torch.zeros(3, 32, 32)), boxes)[1]
    assert (forced[:, :2] >= 0).all() and (forced[:, 2:] <= 32).all()


def test_integer_keypoints_keep_their_dtype():
    kp = tv_tensors.KeyPoints(torch.tensor([[3, 4], [10, 2]], dtype=torch.int64), canvas_size=(16, 16))
    out = RandomAffine({"rotate": 90}, seed=0)(kp)
    assert out.dtype == torch.int64
    assert out.tolist() == [[4, 12], [2, 5]]  # rotated 90° counter-clockwise about (7.5, 7.5)


def test_plain_hw_tensor_gets_a_clear_error():
    with pytest.raises(
        ValueError,
        match=(
            r"image tensors must be \(\.\.\., C, H, W\), got shape \(8, 8\); "
            r"give a single-channel image as \(1, H, W\)"
        ),
    ):
        RandomAffine("mild", seed=0)(torch.zeros(8, 8))


# ---------- torchvision conformance (issue items 3, 5-8)


def _inside(points, rect, tol=1e-4):
    """Whether every point lies in the rectangle given by its 4 corners (K, 4, 2)."""
    o, u, v = rect[:, :1], rect[:, 1:2] - rect[:, :1], rect[:, 3:4] - rect[:, :1]
    s = np.sum((points - o) * u, -1) / np.sum(u * u, -1)
    t = np.sum((points - o) * v, -1) / np.sum(v * v, -1)
    return (s > -tol) & (s < 1 + tol) & (t > -tol) & (t < 1 + tol)


@pytest.mark.parametrize("fmt", ["XYXYXYXY", "XYWHR", "CXCYWHR"])
def test_sheared_rotated_boxes_are_tight_enclosing_rectangles(fmt):
    # the XYXY box (6, 8, 22, 14) as its 4 corners, turned into the tested format
    boxes = tv_tensors.BoundingBoxes(
        v2.functional.convert_bounding_box_format(
            torch.tensor([[6.0, 8.0, 22.0, 8.0, 22.0, 14.0, 6.0, 14.0]]), old_format="XYXYXYXY", new_format=fmt
        ),
        format=fmt,
        canvas_size=(40, 40),
        clamping_mode=None,
    )
    t = RandomAffine({"shear": {"x": 30}, "rotate": 20}, seed=0)
    out = t(boxes)
    corners = (
        v2.functional.convert_bounding_box_format(out.as_subclass(torch.Tensor), old_format=fmt, new_format="XYXYXYXY")
        .numpy()
        .reshape(-1, 4, 2)
        .astype(np.float64)
    )
    m = aa.sample(t.config, [0], size=(40, 40)).matrices[0]
    obj = aa.transform_points(np.array([[6, 8], [22, 8], [22, 14], [6, 14]], float) - 0.5, m) + 0.5  # the sheared box
    assert _inside(obj[None], corners).all()  # covers all of the object (was 95.5-97%, or a raw parallelogram)
    sides = np.diff(np.concatenate([corners[0], corners[0][:1]]), axis=0)
    assert np.allclose([sides[k] @ sides[(k + 1) % 4] for k in range(4)], 0, atol=1e-3)  # right angles
    # tight: no smaller rectangle along either of the parallelogram's edge directions exists
    area = np.linalg.norm(sides[0]) * np.linalg.norm(sides[1])
    e1, e3 = obj[1] - obj[0], obj[3] - obj[0]
    para = abs(e1[0] * e3[1] - e1[1] * e3[0])
    assert para < area < para * 1.4
    assert area <= _axis_aligned_area(obj) + 1e-6


def _axis_aligned_area(p):
    return np.ptp(p[:, 0]) * np.ptp(p[:, 1])


def test_enclosing_rectangle_keeps_rectangles_exactly():
    from affine_aug.torch.transforms import enclosing_rectangles

    for degenerate in ([[2, 3], [2, 3], [2, 9], [2, 9]], [[2, 3], [7, 3], [7, 3], [2, 3]], [[1, 1]] * 4):
        q = np.array([degenerate], float)  # zero-width, zero-height, a point: kept as they are
        np.testing.assert_array_equal(enclosing_rectangles(q), q)

    r = np.array([[[0, 0], [4, 0], [4, 2], [0, 2]]], float)
    for th in (0.0, 0.3, np.pi / 2, 2.0):
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        np.testing.assert_allclose(enclosing_rectangles(r @ rot.T + 5), r @ rot.T + 5, atol=1e-12)


def test_rotated_boxes_follow_their_clamping_mode():
    rng = np.random.default_rng(0)
    xyxy = np.sort(rng.uniform(0, 64, (200, 2, 2)), axis=1).reshape(200, 4)[:, [0, 2, 1, 3]]
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 2)
    cxcywhr = np.concatenate(
        [(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2], rng.uniform(-40, 40, (200, 1))], 1
    )
    out, outside = {}, {}
    for mode in ("soft", "hard", None):
        boxes = tv_tensors.BoundingBoxes(
            torch.tensor(cxcywhr, dtype=torch.float32), format="CXCYWHR", canvas_size=(64, 64), clamping_mode=mode
        )
        out[mode] = RandomAffine("strong", seed=1)(boxes).as_subclass(torch.Tensor)
        c = v2.functional.convert_bounding_box_format(out[mode], old_format="CXCYWHR", new_format="XYXYXYXY").numpy()
        outside[mode] = ((c < -0.5) | (c > 64.5)).any(axis=1).mean()
    assert outside[None] > 0.3 and outside["hard"] == 0 and outside["soft"] < outside[None]  # was: never clamped
    for mode in ("soft", "hard"):  # exactly torchvision's clamping of the unclamped result
        expect = v2.functional.clamp_bounding_boxes(
            out[None], format="CXCYWHR", canvas_size=(64, 64), clamping_mode=mode
        )
        torch.testing.assert_close(out[mode], expect)
    assert not torch.equal(
        RandomAffine("strong", seed=1, clamp_boxes=False)(
            tv_tensors.BoundingBoxes(
                torch.tensor(cxcywhr, dtype=torch.float32), format="CXCYWHR", canvas_size=(64, 64), clamping_mode="hard"
            )
        ),
        out["hard"],
    )


def _pil_images():
    rng = np.random.default_rng(0)
    rgb = PIL.Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    grey16 = PIL.Image.fromarray((rng.integers(0, 65536, (20, 24))).astype(np.uint16))
    return {
        m: rgb.convert(m) for m in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "HSV", "LAB", "I", "F")
    } | {"I;16": grey16, "I;16B": PIL.Image.frombytes("I;16B", grey16.size, np.asarray(grey16).astype(">u2").tobytes())}


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "HSV", "LAB", "I", "F", "I;16", "I;16B"]
)
def test_pil_modes_are_kept(mode):
    im = _pil_images()[mode]
    t = RandomAffine({"rotate": 30, "scale": 0.9}, seed=0)
    out = t(im)
    assert out.mode == im.mode and out.size == im.size
    if mode in ("P", "PA"):
        assert out.getpalette() == im.getpalette()
    arr = np.asarray(im)
    m = aa.sample(t.config, [0], size=arr.shape[:2]).matrices[0]
    nearest = mode in ("1", "P", "PA")
    src = arr.astype(np.float64) if arr.dtype in (np.int32, bool) else arr.astype(arr.dtype.newbyteorder("="))
    ref = aa.warp_affine(
        src[None], m, interpolation="nearest" if nearest else "bilinear", border="constant", backend="numpy"
    )[0]
    if arr.dtype == np.int32:
        ref = np.floor(ref + 0.5)
    got = np.asarray(out).astype(np.float64)
    tol = 1.0 if arr.dtype.kind in "ui" and not nearest else (1e-4 if mode == "F" else 0)
    np.testing.assert_allclose(got, np.asarray(ref, dtype=np.float64), atol=tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint16, torch.int16, torch.int32, torch.int64])
def test_bilinear_on_integer_tensors_keeps_the_dtype(dtype, device):
    info = torch.iinfo(dtype)
    lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
    x = torch.from_numpy(np.random.default_rng(0).integers(lo, hi, (2, 3, 12, 14), endpoint=True)).to(dtype)
    t = RandomAffine(CFG, seed=0, fill=0)
    out = t(x.to(device)).cpu()
    assert out.dtype == dtype
    m = aa.sample(t.config, np.arange(2), size=(12, 14), seed=0).matrices
    ref = aa.warp_affine(x.to(torch.float64).permute(0, 2, 3, 1).numpy(), m, backend="numpy")
    ref = np.clip(np.floor(ref + 0.5), info.min, info.max).transpose(0, 3, 1, 2)
    tol = 1 + np.abs(ref) * (
        2**-20 if dtype in (torch.uint16, torch.int16) else 2**-45
    )  # float32 arithmetic for 16-bit
    assert (np.abs(out.to(torch.float64).numpy() - ref) <= tol).all()


def test_float64_matrices_reach_the_uint8_kernel_unrounded():
    x = torch.arange(100, dtype=torch.uint8).reshape(1, 1, 10, 10) * 2
    m = np.array([[1.0, 0, 0], [0, 1.0, -0.49999999999999]])  # source y = y + 0.49999999999999: pixel y, not y + 1
    ours = warp_affine(x, m, interpolation="nearest")
    ref = aa.warp_affine(x.permute(0, 2, 3, 1).numpy(), m, interpolation="nearest")
    np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy(), ref)
    np.testing.assert_array_equal(ours[0, 0, :9], x[0, 0, :9])


def test_fixed_parameters_agree_with_torchvision_under_the_documented_mapping():
    """affine_aug {rotate: t, scale: s, shear: {x: a}, translate px (tx, ty)} is torchvision
    F.affine(angle=-t, translate=[tx, ty], scale=s, shear=[-a, 0]): images within one
    level, masks exactly, boxes within 1e-4 (README, torchvision section)."""
    F = v2.functional
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (9, 11, 3)).astype(np.float64)
    img = np.array(PIL.Image.fromarray(small.astype(np.uint8)).resize((41, 33), PIL.Image.Resampling.BILINEAR))
    image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    mask = tv_tensors.Mask(torch.from_numpy(rng.integers(0, 5, (33, 41)).astype(np.uint8)))
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[5.0, 6.0, 20.0, 18.0], [10.5, 2.25, 30.0, 29.0]]), format="XYXY", canvas_size=(33, 41)
    )
    for t_, s_, a_, tx, ty in [(25, 1.1, 10, 3, -2), (-60, 0.8, -20, 0, 4), (90, 1.0, 0, 0, 0)]:
        cfg = {"rotate": t_, "scale": s_, "shear": {"x": a_}, "translate": {"x": tx, "y": ty, "unit": "px"}}
        ours = RandomAffine(cfg, seed=0)({"image": image, "mask": mask, "boxes": boxes})
        kw = dict(angle=-t_, translate=[tx, ty], scale=s_, shear=[-a_, 0.0])
        ref_img = F.affine(image, **kw, interpolation=v2.InterpolationMode.BILINEAR)
        ref_mask = F.affine(mask, **kw)
        ref_boxes = F.affine(boxes, **kw)
        assert (ours["image"].int() - ref_img.int()).abs().max() <= 1
        # masks (nearest) agree except where torchvision's float32 grid rounds a near-tie the other way
        ys, xs = torch.nonzero(ours["mask"] != ref_mask, as_tuple=True)
        inv = np.linalg.inv(aa.sample(cfg, [0], size=(33, 41)).matrices[0])
        src = aa.transform_points(np.stack([xs.numpy(), ys.numpy()], 1).astype(np.float64), inv)
        assert len(ys) <= 2 and (np.abs(src - np.floor(src) - 0.5).min(axis=1) < 1e-4).all()
        torch.testing.assert_close(
            ours["boxes"].as_subclass(torch.Tensor), ref_boxes.as_subclass(torch.Tensor), atol=1e-4, rtol=0
        )


def _make(kind, batch, dtype, device):
    """One input of ``kind`` with leading ``batch`` dims (torchvision's make_* helpers' role)."""
    h, w = 10, 12
    if kind in ("image", "tensor", "video"):
        shape = (*batch, *((2,) if kind == "video" else ()), 3, h, w)
        x = (torch.rand(shape) * 200).to(dtype) if dtype.is_floating_point else torch.randint(0, 200, shape).to(dtype)
        x = x.to(device)
        return {"image": tv_tensors.Image, "video": tv_tensors.Video}.get(kind, lambda t: t)(x)
    if kind == "mask":
        return tv_tensors.Mask(torch.randint(0, 3, (*batch, h, w), dtype=torch.uint8, device=device))
    if kind == "boxes":
        return tv_tensors.BoundingBoxes(
            torch.tensor([[1.0, 2.0, 8.0, 9.0]] * 3, device=device),
            format="XYXY",
            canvas_size=(h, w),
            clamping_mode="hard",
        )
    return tv_tensors.KeyPoints(torch.tensor([[1.0, 2.0], [5.0, 6.0]], device=device), canvas_size=(h, w))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.float32])
@pytest.mark.parametrize("batch", [(), (2,), (0,)])
@pytest.mark.parametrize("kind", ["image", "tensor", "video", "mask", "boxes", "keypoints"])
def test_smoke_every_kind_batch_dtype_device(kind, batch, dtype, device):
    if kind in ("boxes", "keypoints") and (batch or dtype != torch.float32):
        pytest.skip("boxes and keypoints are not batched images")
    x = _make(kind, batch, dtype, device)
    sample = (
        {"x": x, "label": 3, "name": "a", "extra": torch.tensor([1, 2])}
        if kind in ("boxes", "keypoints", "mask")
        else {"x": x}
    )
    if kind in ("boxes", "keypoints", "mask"):
        sample["img"] = _make("image", batch if kind == "mask" else (), torch.uint8, device)
    out = RandomAffine(CFG, seed=0)(sample)
    y = out["x"]
    assert type(y) is type(x) and y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    for attr in ("canvas_size", "format", "clamping_mode"):
        assert getattr(y, attr, None) == getattr(x, attr, None)
    if "label" in sample:  # non-image types pass through untouched
        assert out["label"] == 3 and out["name"] == "a" and torch.equal(out["extra"], sample["extra"])


# --------------------------------------------------------------------------- Spatial Transformer

from affine_aug.torch import SpatialTransformer  # noqa: E402
from affine_aug.torch.stn import FAMILIES  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spatial_transformer_is_the_identity_at_initialisation(family, dtype, device):
    st = SpatialTransformer(3, family=family).to(device=device, dtype=dtype)
    x = torch.randn(4, 3, 17, 23, dtype=dtype, device=device)
    y, m = st(x, return_matrices=True)
    assert torch.equal(y, x)  # bit for bit
    assert torch.equal(m, torch.eye(3, dtype=dtype, device=device).expand(4, 3, 3))
    assert st(x[:0]).shape == (0, 3, 17, 23)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_spatial_transformer_families_match_affine_matrix(family):
    st = SpatialTransformer(1, family=family)
    h, w, ho, wo = 20, 28, 12, 16
    r, ro = 14.0, 8.0
    k = ro / r
    ang, s, t = np.deg2rad(30.0), 1.25, (0.1, -0.05)
    p = {
        "affine": [0.2, -0.1, 0.05, 0.3, *t],
        "rts": [ang, np.log(s), *t],
        "attention": [np.log(s), *t],
        "translation": list(t),
    }[family]
    m = st.matrices(torch.tensor([p], dtype=torch.float64), (h, w), (ho, wo))[0].numpy()
    # the same map built from library pieces: input centre -> origin, the family's map, -> output centre
    if family == "affine":
        lin = np.array([[1.2, -0.1], [0.05, 1.3]])
    else:
        lin = aa.affine_matrix(
            (1, 1), rotate=30 if family == "rts" else 0, scale=s if family in ("rts", "attention") else 1, center=(0, 0)
        )[:2, :2]
    move_in = aa.affine_matrix((h, w), translate=(-(w - 1) / 2, -(h - 1) / 2))
    inner = np.eye(3)
    inner[:2, :2] = k * lin
    move_out = aa.affine_matrix((ho, wo), translate=((wo - 1) / 2 + ro * t[0], (ho - 1) / 2 + ro * t[1]))
    np.testing.assert_allclose(m, move_out @ inner @ move_in, atol=1e-12)
    if family == "rts":  # the library's rotation sign: counter-clockwise on screen, like rotate: 30
        np.testing.assert_allclose(m[:2, :2], aa.affine_matrix((h, w), rotate=30, scale=s * k)[:2, :2], atol=1e-12)


def test_spatial_transformer_gradcheck_input_and_localisation():
    loc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 7, 4), torch.nn.Tanh())
    st = SpatialTransformer(2, family="affine", localization=loc, features=4, border="constant").double()
    torch.nn.init.normal_(st.head.weight, std=0.05)
    x = torch.rand(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    w = st.localization[1].weight

    def f(inp, weight):
        return torch.func.functional_call(st, {"localization.1.weight": weight}, (inp,))

    assert torch.autograd.gradcheck(f, (x, w.detach().clone().requires_grad_(True)), eps=1e-6, atol=1e-5)


def test_warper_equals_affine_grid_and_grid_sample():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((3, 2, 19, 25)).astype(np.float32))
    m = sampled_matrices(CFG, 3, (19, 25))
    for border, padding in (("constant", "zeros"), ("edge", "border")):
        ours = warp_affine(x, m, out_size=(15, 21), border=border)
        theta = torch.from_numpy(aa.to_theta(m, (19, 25), (15, 21))).float()
        grid = torch.nn.functional.affine_grid(theta, (3, 2, 15, 21), align_corners=False)
        ref = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(aa.from_theta(theta.double().numpy(), (19, 25), (15, 21)), m, atol=1e-6)


def test_spatial_transformer_bad_family():
    with pytest.raises(
        ValueError, match=r"unknown family 'shear'; expected one of affine, rts, attention, translation"
    ):
        SpatialTransformer(1, family="shear")


def test_spatial_transformer_attention_to_a_smaller_output():
    st = SpatialTransformer(1, family="attention", out_size=(8, 8))
    m = st.matrices(torch.tensor([[np.log(2.0), 0.0, 0.0]], dtype=torch.float64), (16, 16), (8, 8))[0].numpy()
    # zoom 2 about the centre, then the 16 -> 8 size change (k = 1/2): the centre 8x8 fills the output
    np.testing.assert_allclose(
        aa.transform_points(np.array([[4.0, 4.0], [11.0, 11.0], [7.5, 7.5]]), m),
        [[0.0, 0.0], [7.0, 7.0], [3.5, 3.5]],
        atol=1e-12,
    )


def test_spatial_transformer_overfits_one_batch():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 24, 24)
    y = torch.arange(16) % 4
    from affine_aug.torch.stn import small_cnn

    net = torch.nn.Sequential(SpatialTransformer(1, family="rts"), small_cnn(1, 4, 24))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert net[0].head.weight.abs().sum() > 0  # the localisation head learned too


def test_stn_digits_experiment_smoke(tmp_path):
    pytest.importorskip("sklearn")
    tables = []
    for _ in range(2):  # deterministic for a given seed: two runs print the same errors
        r = subprocess.run(
            [sys.executable, "benchmarks/stn_digits.py", "--smoke", "--picture", str(tmp_path / "p.png")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert "| ST-CNN + affine_aug augmentation |" in r.stdout
        tables.append([line for line in r.stdout.splitlines() if line.startswith(("|", "("))])
    assert tables[0] == tables[1] and len(tables[0]) == 14
