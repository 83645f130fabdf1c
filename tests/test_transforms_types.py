"""RandomAffine per input type: fills checked at construction and per channel, cubic_a, kernels by type."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

from affine_aug.torch import RandomAffine  # noqa: E402

SHIFT_OUT = {"translate": {"x": 1.0, "y": 0.0}}  # content moved a whole width: every output pixel is fill


def _video(t, c, dtype=torch.uint8):
    return tv_tensors.Video(
        torch.randint(0, 255, (t, c, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).to(dtype)
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.int16])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_video_fill_is_per_channel_as_torchvision(dtype, batch):
    video = tv_tensors.Video(_video(2, 3, dtype).expand(*batch, 2, 3, 8, 8).contiguous())
    ours = RandomAffine(SHIFT_OUT, fill=[10, 20, 30])(video)
    theirs = F.affine(video, angle=0.0, translate=[8, 0], scale=1.0, shear=[0.0, 0.0], fill=[10, 20, 30])
    assert isinstance(ours, tv_tensors.Video) and ours.shape == video.shape and ours.dtype == dtype
    assert torch.equal(ours.as_subclass(torch.Tensor), theirs.as_subclass(torch.Tensor))
    assert ours[..., 0, :, :].eq(10).all() and ours[..., 2, :, :].eq(30).all()


def test_video_fill_rotated_frames_agree_with_their_image():
    video = _video(3, 3)
    t = RandomAffine({"rotate": 10}, seed=1, fill=[10, 20, 30])
    out = t(video)
    for f in range(3):  # each frame is warped as an image of 3 channels with the same fill
        frame = RandomAffine({"rotate": 10}, seed=1, fill=[10, 20, 30])(tv_tensors.Image(video[f]))
        assert torch.equal(out[f].as_subclass(torch.Tensor), frame.as_subclass(torch.Tensor))


def test_greyscale_video_with_three_fills_is_refused_as_torchvision_refuses_it():
    video = _video(3, 1)
    with pytest.raises(ValueError, match=r"cannot broadcast to match the number of channels of the image \(3 != 1\)"):
        F.affine(video, angle=0.0, translate=[8, 0], scale=1.0, shear=[0.0, 0.0], fill=[10, 20, 30])
    with pytest.raises(ValueError, match=r"fill has 3 values but the video has 1 channel per frame"):
        RandomAffine(SHIFT_OUT, fill=[10, 20, 30])(video)
    with pytest.raises(ValueError, match=r"fill has 2 values but the video has 3 channels per frame"):
        RandomAffine(SHIFT_OUT, fill=[1, 2])(_video(2, 3))
    assert RandomAffine(SHIFT_OUT, fill=[7])(video).eq(7).all()  # one value serves every channel


@pytest.mark.parametrize(
    "fill, error, match",
    [
        ("fill", TypeError, r"fill must be a number or a sequence of numbers \(one per channel\), got 'fill'"),
        ([1, "a"], TypeError, r"fill must be a number or a sequence of numbers \(one per channel\), got \[1, 'a'\]"),
        (None, TypeError, r"fill must be a number or a sequence of numbers \(one per channel\), got None"),
        ({tv_tensors.Image: 3}, TypeError, r"fill must be a number or a sequence of numbers"),
        (1 + 2j, TypeError, r"fill must be a number or a sequence of numbers"),
        (
            [],
            ValueError,
            r"fill must be a number or a flat, non-empty sequence of numbers \(one per channel\), got \[\]",
        ),
        ([[1, 2, 3]], ValueError, r"fill must be a number or a flat, non-empty sequence of numbers"),
        (float("nan"), ValueError, r"fill must be finite, got nan"),
        ([0, math.inf, 0], ValueError, r"fill must be finite, got \[0, inf, 0\]"),
    ],
)
def test_bad_fill_is_refused_at_construction(fill, error, match):
    with pytest.raises(error, match=match):
        RandomAffine(SHIFT_OUT, fill=fill)
    with pytest.raises(error, match=match.replace("fill must", "mask_fill must")):
        RandomAffine(SHIFT_OUT, mask_fill=fill)


def test_torchvision_also_refuses_a_string_fill_at_construction():
    with pytest.raises(TypeError, match="Got inappropriate fill arg"):
        v2.RandomAffine(10, fill="fill")


@pytest.mark.parametrize(
    "fill, match",
    [
        (300, r"fill 300 is not an integer in \[0, 255\] as uint8 images need"),
        (-1, r"fill -1 is not an integer in \[0, 255\] as uint8 images need"),
        (1.5, r"fill 1.5 is not an integer in \[0, 255\] as uint8 images need"),
    ],
)
def test_fill_out_of_range_for_the_dtype_is_named_at_the_first_call(fill, match):
    t = RandomAffine(SHIFT_OUT, fill=fill)  # the dtype is known only once an image comes
    assert t(torch.zeros(3, 8, 8)).eq(fill).all()  # fine for float images
    with pytest.raises(ValueError, match=match):
        t(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_good_fills_are_kept_as_given():
    for fill in (0, 2.5, True, np.float32(3), [1, 2, 3], (1.0,), np.array([4, 5, 6])):
        assert RandomAffine(SHIFT_OUT, fill=fill).fill is fill


# --------------------------------------------------------------------------- kernels by type


def test_each_input_type_finds_its_kernel():
    import PIL.Image

    from affine_aug.torch import kernels as K

    png = PIL.Image.new("RGB", (4, 4))
    png.save(buf := __import__("io").BytesIO(), format="PNG")
    opened = PIL.Image.open(buf)  # a PngImageFile: a subclass finds its base's kernel
    boxes = tv_tensors.BoundingBoxes([[0, 0, 2, 2]], format="XYXY", canvas_size=(4, 4))
    points = tv_tensors.KeyPoints([[1, 1]], canvas_size=(4, 4))
    cases = [
        (opened, K.affine_pil),
        (np.zeros((4, 4)), K.affine_array),
        (torch.zeros(1, 4, 4), K.affine_image),
        (tv_tensors.Image(torch.zeros(1, 4, 4)), K.affine_image),
        (tv_tensors.Video(torch.zeros(1, 1, 4, 4)), K.affine_video),
        (tv_tensors.Mask(torch.zeros(4, 4)), K.affine_mask),
        (boxes, K.affine_boxes),
        (points, K.affine_keypoints),
    ]
    for inpt, kernel in cases:
        assert K.kernel_for(inpt) is kernel, type(inpt)
    assert K.kernel_for("a label") is None and K.kernel_for(3) is None
    assert set(K.KERNELS.values()) == {k for _, k in cases}


def test_a_kernel_called_alone_is_what_the_transform_gives():
    from affine_aug.torch import kernels as K

    t = RandomAffine({"rotate": [-40, 40], "shear": [-10, 10]}, seed=5, fill=[1, 2, 3], border="reflect")
    img = tv_tensors.Image(torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(1)))
    boxes = tv_tensors.BoundingBoxes([[1, 2, 6, 7]], format="XYXY", canvas_size=(9, 11))
    out_img, out_boxes = t(img, boxes)
    t._counter = 0
    params = t.make_params([img, boxes])
    assert torch.equal(K.affine_image(img, params, t.options()), out_img)
    assert torch.equal(K.affine_boxes(boxes, params, t.options()), out_boxes)
    assert K.affine_image(img, params, K.WarpOptions()).ne(out_img).any()  # the options are what the kernel reads


def test_apply_keyed_is_the_draw_of_that_key():
    from affine_aug import sample
    from affine_aug.torch import warp_affine

    t = RandomAffine({"rotate": [-40, 40]}, seed=9, interpolation="nearest")
    img = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    m = sample(t.config, np.array([12345], dtype=np.uint64), size=(8, 8), seed=9).matrices
    got_img, label = t.apply_keyed((img, "cat"), 12345)
    assert label == "cat" and torch.equal(got_img, warp_affine(img, torch.as_tensor(m), interpolation="nearest"))
    assert t._counter == 0  # the call-order stream is left alone
    assert t.apply_keyed({"label": 1}, 3) == {"label": 1}
    with pytest.raises(
        ValueError, match=r"apply_keyed needs a transform with a seed: RandomAffine\(config, seed=\.\.\.\)"
    ):
        RandomAffine({"rotate": 5}).apply_keyed(img, 0)


@pytest.mark.parametrize("value", ["yes", 1, 0, "soft"])
def test_clamp_boxes_is_checked_at_construction(value):
    with pytest.raises(ValueError, match=r"clamp_boxes must be None, True or False, got " + repr(value)):
        RandomAffine(SHIFT_OUT, clamp_boxes=value)
    assert RandomAffine(SHIFT_OUT, clamp_boxes=np.bool_(True)).clamp_boxes is True
