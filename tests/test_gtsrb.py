import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import affine_aug as aa
from affine_aug import gtsrb
from affine_aug.config import resolve_preset
from affine_aug import jobs, pipeline
from affine_aug.gtsrb import join
from affine_aug.jobs import engine
from affine_aug.gtsrb import DataError, make_synthetic, preprocess, read_gtsrb, split_tracks
from affine_aug.jobs import JobDataError, JobError
from affine_aug.pipeline import box_to_size_matrix, warp_ragged

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    n = make_synthetic(root, tracks_per_class=3, frames=3, test_per_class=2, seed=1)
    return root, n


def copy_tree(src, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst


def test_synthetic_layout_and_counts(synthetic):
    root, n = synthetic
    splits = read_gtsrb(root)
    assert len(splits["train"]) == n["train"] and len(splits["test"]) == n["test"] == 86
    labels = {s.label for s in splits["train"]}
    assert labels == set(range(43))
    counts = np.bincount([s.label for s in splits["train"]], minlength=43)
    assert counts[2] > counts[0]  # the real imbalance: class 2 is common, class 0 rare
    s = splits["train"][0]
    img = Image.open(s.path)
    assert img.format == "PPM" and img.size == s.size
    x1, y1, x2, y2 = s.roi
    assert x1 >= 5 and y1 >= 5 and s.size[0] - x2 >= 5 and s.size[1] - y2 >= 5


def test_full_synthetic_counts_match_gtsrb():
    assert sum(gtsrb.TRAIN_COUNTS) == 39209 and sum(gtsrb.TEST_COUNTS) == 12630


def _write_official(root: Path, rows, test_rows=None):
    """Tiny official layout from (class, filename, image array, roi) rows."""
    for label, name, img, roi in rows:
        d = root / "GTSRB" / "Final_Training" / "Images" / f"{label:05d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / name, format="PPM")
        csv = d / f"GT-{label:05d}.csv"
        if not csv.exists():
            csv.write_text(HEADER)
        with open(csv, "a") as f:
            f.write(f"{name};{img.shape[1]};{img.shape[0]};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{label}\n")


def painted(h, w, roi):
    """ROI painted white, margin painted dark red: a crop that leaks margin shows red."""
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (120, 0, 0)
    x1, y1, x2, y2 = roi
    img[y1:y2, x1:x2] = 255
    return img


def test_roi_crop_is_exact(tmp_path):
    roi = (5, 6, 24, 25)  # GTSRB's own example row: 29x30 image, X2/Y2 exclusive
    _write_official(
        tmp_path, [(0, "00000_00000.ppm", painted(30, 29, roi), roi), (0, "00001_00000.ppm", painted(30, 29, roi), roi)]
    )
    preprocess(tmp_path, tmp_path / "out", config="identity", size=19, val_tracks=0)
    x = np.load(tmp_path / "out" / "train.npz")["x"]
    # 19x19 ROI onto 19x19 output: a pure shift, every pixel white, no red margin
    assert np.all(x == 255)
    preprocess(tmp_path, tmp_path / "out2", config="identity", size=32, val_tracks=0)
    x = np.load(tmp_path / "out2" / "train.npz")["x"]
    # upscaled (half-pixel-centred resize): the interior is white and the outermost
    # pixels blend a little of the margin in, the same amount on all four sides; an
    # inclusive X2/Y2 would pull a whole red column/row into the right/bottom side only
    assert np.all(x[:, 1:-1, 1:-1] == 255)
    np.testing.assert_array_equal(x[:, :, 0], x[:, :, -1])
    np.testing.assert_array_equal(x[:, 0], x[:, -1])
    np.testing.assert_array_equal(x[:, 0, 1:-1], x[:, 1:-1, 0])
    assert x[:, 0, 5:-5, 1].min() > 180


def test_roi_matrix_maps_edges():
    m = box_to_size_matrix([5, 6, 24, 25], (38, 38))
    np.testing.assert_allclose(aa.transform_boxes([[5, 6, 24, 25]], m), [[0, 0, 38, 38]])


def test_labels_come_from_class_id_not_folder(tmp_path):
    img = painted(20, 20, (5, 5, 15, 15))
    _write_official(tmp_path, [(3, "00000_00000.ppm", img, (5, 5, 15, 15))])
    csv = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00003" / "GT-00003.csv"
    csv.write_text(csv.read_text().replace(";3\n", ";7\n"))
    assert read_gtsrb(tmp_path)["train"][0].label == 7


def test_torchvision_and_kaggle_layouts(synthetic, tmp_path):
    root, n = synthetic
    official = read_gtsrb(root)
    tv = tmp_path / "tv" / "gtsrb"
    shutil.copytree(root / "GTSRB" / "Final_Training" / "Images", tv / "GTSRB" / "Training")
    shutil.copytree(root / "GTSRB" / "Final_Test" / "Images", tv / "GTSRB" / "Final_Test" / "Images")
    shutil.move(tv / "GTSRB" / "Final_Test" / "Images" / "GT-final_test.csv", tv / "GT-final_test.csv")
    got = read_gtsrb(tmp_path / "tv")
    assert [(s.label, s.roi) for s in got["train"]] == [(s.label, s.roi) for s in official["train"]]
    assert [(s.label, s.roi) for s in got["test"]] == [(s.label, s.roi) for s in official["test"]]

    kg = tmp_path / "kaggle"
    lines = ["Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path"]
    for s in official["train"][:20]:
        rel = Path("Train") / str(s.label) / f"{s.label:05d}_{s.path.stem}.png"
        (kg / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.open(s.path).save(kg / rel)
        lines.append(f"{s.size[0]},{s.size[1]},{s.roi[0]},{s.roi[1]},{s.roi[2]},{s.roi[3]},{s.label},{rel}")
    (kg / "Train.csv").write_text("\n".join(lines) + "\n")
    got = read_gtsrb(kg)["train"]
    assert [(s.label, s.roi) for s in got] == [(s.label, s.roi) for s in official["train"][:20]]
    assert got[3].track == official["train"][3].track


def test_track_split_holds_out_whole_tracks(synthetic):
    root, _ = synthetic
    train = sorted(read_gtsrb(root)["train"], key=lambda s: (s.label, s.track, str(s.path)))
    tr, va = split_tracks(train, 1, seed=0)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(train)
    train_tracks = {(train[i].label, train[i].track) for i in tr}
    val_tracks = {(train[i].label, train[i].track) for i in va}
    assert train_tracks.isdisjoint(val_tracks)  # no frame of a held-out track in training
    per_class = {}
    for label, _ in val_tracks:
        per_class[label] = per_class.get(label, 0) + 1
    assert set(per_class.values()) == {1}
    assert {train[i].label for i in tr} == set(range(43))  # every class keeps a training track
    assert split_tracks(train, 1, seed=5) != (tr, va)  # which track is a keyed draw


def test_preprocess_outputs_copies_and_determinism(synthetic, tmp_path):
    root, n = synthetic
    m1 = preprocess(root, tmp_path / "a", copies=2, seed=3)
    m2 = preprocess(root, tmp_path / "b", copies=2, seed=3, workers=2)
    assert m1["files"] == m2["files"]  # byte-identical, whatever --workers
    for split in ("train", "val", "test"):
        a = (tmp_path / "a" / f"{split}.npz").read_bytes()
        assert a == (tmp_path / "b" / f"{split}.npz").read_bytes()
    d = np.load(tmp_path / "a" / "train.npz")
    assert d["x"].shape[1:] == (32, 32, 3) and d["x"].dtype == np.uint8 and d["y"].dtype == np.int64
    assert np.bincount(d["copy"]).tolist() == [len(d["x"]) // 3] * 3  # originals + 2 copies each
    val = np.load(tmp_path / "a" / "val.npz")
    assert np.all(val["copy"] == 0) and np.all(np.load(tmp_path / "a" / "test.npz")["copy"] == 0)
    assert m1["counts"]["train"]["total"] + m1["counts"]["val"]["total"] == n["train"] + 2 * (len(d["x"]) // 3)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["config"]["rotate"] == [-15.0, 15.0]
    assert manifest["version"] == aa.__version__ and set(manifest["files"]) == {"train.npz", "val.npz", "test.npz"}
    m3 = preprocess(root, tmp_path / "c", copies=2, seed=4)
    assert m3["files"]["train.npz"] != m1["files"]["train.npz"]
    assert not list((tmp_path / "a").glob(".partial-*"))


def test_augmented_copy_is_one_resampling(synthetic, tmp_path):
    root, _ = synthetic
    preprocess(root, tmp_path / "o", copies=1, seed=2, val_tracks=0, overrides=["rotate=30"])
    d = np.load(tmp_path / "o" / "train.npz")
    train = sorted(read_gtsrb(root)["train"], key=lambda s: (s.label, s.track, str(s.path)))
    k = int(np.flatnonzero(d["copy"] == 1)[0])
    s = train[int(d["source"][k])]
    key = (int(d["source"][k]) << 20) | 1
    cfg = aa.load_config(resolve_preset("gtsrb"), overrides=["rotate=30"])
    m = aa.compose(box_to_size_matrix(s.roi, (32, 32)), aa.sample(cfg, [key], size=(32, 32), seed=2).matrices[0])
    expect = warp_ragged([np.asarray(Image.open(s.path).convert("RGB"))], m[None], (32, 32))
    np.testing.assert_array_equal(d["x"][k], expect[0])


def test_balance(synthetic, tmp_path):
    root, _ = synthetic
    m = preprocess(root, tmp_path / "o", copies=1, balance=True)
    per_class = m["counts"]["train"]["per_class"]
    assert len(set(per_class.values())) == 1 and len(per_class) == 43


def test_folder_format(synthetic, tmp_path):
    root, _ = synthetic
    preprocess(root, tmp_path / "o", copies=1, fmt="folder", val_tracks=0)
    files = sorted((tmp_path / "o" / "train").rglob("*.png"))
    assert len(files) == 2 * len(read_gtsrb(root)["train"])
    assert Image.open(files[0]).size == (32, 32)


def test_antialiasing_matches_pillow_on_fine_pattern(tmp_path):
    # 1-pixel stripes shrunk ~3.5x: plain bilinear aliases into a strong pattern, the
    # prefiltered warp is close to Pillow's antialiased resize (uniform grey)
    stripes = np.zeros((128, 128, 3), np.uint8)
    stripes[:, ::2] = 255
    m = box_to_size_matrix([0, 0, 128, 128], (37, 37))[None]
    ours = warp_ragged([stripes], m, (37, 37))[0].astype(float)
    raw = warp_ragged([stripes], m, (37, 37), antialias=False)[0].astype(float)
    pil = np.asarray(Image.fromarray(stripes).resize((37, 37), Image.Resampling.LANCZOS)).astype(float)
    assert raw.std() > 50  # aliased
    assert np.abs(ours - pil)[4:-4, 4:-4].max() < 8 and ours[4:-4, 4:-4].std() < 3


# --------------------------------------------------------------------------- bad data


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda csv, d: csv.write_text(csv.read_text().replace(";5;5;15;15;", ";5;x;15;15;", 1)),
            r"GT-00000\.csv:2: Roi\.Y1 is not an integer: 'x'",
        ),
        (
            lambda csv, d: csv.write_text(csv.read_text().replace(";5;5;15;15;", ";5;5;25;15;", 1)),
            r"GT-00000\.csv:2: bad ROI \(5, 5, 25, 15\) for a 20x20 image",
        ),
        (lambda csv, d: (d / "00000_00000.ppm").unlink(), r"GT-00000\.csv:2: image 00000_00000\.ppm not found"),
        (
            lambda csv, d: (d / "00000_00000.ppm").write_bytes((d / "00000_00000.ppm").read_bytes()[:100]),
            r"00000_00000\.ppm: corrupt or truncated image .*listed at .*GT-00000\.csv:2",
        ),
        (lambda csv, d: (d / "00000_00000.ppm").write_bytes(b"not an image"), r"00000_00000\.ppm: not an image file"),
        (
            lambda csv, d: csv.write_text(csv.read_text().replace("Roi.X1", "RoiX1")),
            r"GT-00000\.csv:1: missing column\(s\) Roi\.X1",
        ),
    ],
)
def test_bad_data_named_and_skippable(tmp_path, edit, match):
    img = painted(20, 20, (5, 5, 15, 15))
    _write_official(tmp_path, [(0, f"0000{t}_00000.ppm", img, (5, 5, 15, 15)) for t in range(3)])
    d = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00000"
    edit(d / "GT-00000.csv", d)
    with pytest.raises((DataError, JobDataError), match=match):
        preprocess(tmp_path, tmp_path / "out", val_tracks=0)
    assert not (tmp_path / "out" / "manifest.json").exists() and not (tmp_path / "out" / "train.npz").exists()
    if "missing column" in match:
        return
    m = preprocess(tmp_path, tmp_path / "out", val_tracks=0, skip_bad=True)
    assert len(m["skipped"]) == 1 and m["counts"]["train"]["total"] == 2


def test_size_mismatch_with_csv(tmp_path):
    _write_official(tmp_path, [(0, "00000_00000.ppm", painted(20, 20, (5, 5, 15, 15)), (5, 5, 15, 15))])
    csv = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00000" / "GT-00000.csv"
    csv.write_text(csv.read_text().replace(";20;20;", ";22;20;"))
    with pytest.raises(JobDataError, match=r"image is 20x20 but the CSV says 22x20"):
        preprocess(tmp_path, tmp_path / "out")


def test_no_layout(tmp_path):
    with pytest.raises(DataError, match=r"no GTSRB layout found"):
        read_gtsrb(tmp_path)


@pytest.mark.parametrize("stop_at", ["third", "last"])
def test_interrupted_run_resumes_to_the_same_bytes(synthetic, tmp_path, monkeypatch, stop_at):
    root, _ = synthetic
    whole = preprocess(root, tmp_path / "whole", copies=1, seed=1, shard_size=40)
    out = tmp_path / "out"
    calls = {"n": 0}
    real = engine._augment_images
    stop = (
        3 if stop_at == "third" else len(whole["shards"])
    )  # the last: a test shard, train and val are joined or joining

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == stop:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(engine, "_augment_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        preprocess(root, out, copies=1, seed=1, shard_size=40)
    assert not (out / "manifest.json").exists() and not (out / "test.npz").exists()  # nothing looks complete
    assert not list((out / ".affine_aug" / "tmp").glob("*.partial"))  # a join in progress was abandoned cleanly
    if stop_at == "third":
        assert not list(out.glob("*.npz"))
    for split in ("train", "val"):  # a split joined before the stop is whole
        if (out / f"{split}.npz").exists():
            assert (out / f"{split}.npz").read_bytes() == (tmp_path / "whole" / f"{split}.npz").read_bytes()
    monkeypatch.setattr(engine, "_augment_images", real)
    m = preprocess(root, out, copies=1, seed=1, shard_size=40)
    assert m["resumed_shards"] == stop - 1 and m["files"] == whole["files"]
    for split in ("train", "val", "test"):
        assert (out / f"{split}.npz").read_bytes() == (tmp_path / "whole" / f"{split}.npz").read_bytes()
    assert not list((out / ".affine_aug" / "parts").glob("*"))  # joined parts are removed
    again = preprocess(root, out, copies=1, seed=1, shard_size=40)  # complete: verified, nothing redone
    assert again["resumed_shards"] == len(again["shards"]) and again["files"] == whole["files"]
    with pytest.raises(JobError, match=r"holds another job's output: seed: 1 in the output, 2 now"):
        preprocess(root, out, copies=1, seed=2, shard_size=40)
    (out / "train.npz").write_bytes(b"damaged")
    fixed = preprocess(root, out, copies=1, seed=1, shard_size=40)  # a damaged split is rebuilt
    assert fixed["files"] == whole["files"] and fixed["resumed_shards"] < len(fixed["shards"])


def test_a_failed_join_stops_the_job_and_resumes(synthetic, tmp_path, monkeypatch):
    root, _ = synthetic
    whole = preprocess(root, tmp_path / "whole", copies=1, seed=1, shard_size=40)
    real = join._stored_array

    def broken(path, name):
        raise JobDataError(f"{path}: cannot read (no space left on device)")

    monkeypatch.setattr(join, "_stored_array", broken)  # the join thread fails on its first part
    out = tmp_path / "out"
    with pytest.raises(JobDataError, match="no space left on device"):
        preprocess(root, out, copies=1, seed=1, shard_size=40, workers=2)
    assert not (out / "manifest.json").exists() and not list(out.glob("*.npz"))
    assert not [p for p in (out / ".affine_aug" / "tmp").iterdir() if p.name.startswith(".train.npz")]
    monkeypatch.setattr(join, "_stored_array", real)
    m = preprocess(root, out, copies=1, seed=1, shard_size=40)
    assert m["files"] == whole["files"]


def test_npz_writer_streams_deterministic_bytes(tmp_path):
    chunks = [np.arange(6, dtype=np.uint8).reshape(2, 3), np.full((1, 3), 7, np.uint8)]
    for name in ("a.npz", "b.npz"):
        with open(tmp_path / name, "wb") as f:
            jobs.write_npz(
                f, {"x": (np.uint8, (3, 3), iter(chunks)), "s": (np.dtype("<U3"), (2,), [np.array(["ab", "c"])])}
            )
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as d:
        np.testing.assert_array_equal(d["x"], np.concatenate(chunks))
        assert d["s"].tolist() == ["ab", "c"]
    with pytest.raises(ValueError, match=r"npz column x: chunks hold 3 rows, the header says 4"):
        with open(tmp_path / "c.npz", "wb") as f:
            jobs.write_npz(f, {"x": (np.uint8, (4, 3), chunks)})


def test_train_script_runs_a_few_steps(synthetic, tmp_path):
    pytest.importorskip("torch")
    import subprocess
    import sys

    root, _ = synthetic
    preprocess(root, tmp_path / "o", copies=1, seed=0)
    r = subprocess.run(
        [
            sys.executable,
            "scripts/train_gtsrb.py",
            "--data",
            str(tmp_path / "o"),
            "--model",
            "stn",
            "--max-steps",
            "3",
            "--batch-size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "validation accuracy" in r.stdout and "test accuracy" in r.stdout
    r = subprocess.run(
        [sys.executable, "scripts/train_gtsrb.py", "--data", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert r.returncode == 1 and "nope/train.npz not found" in r.stderr


def test_netpbm_reader_matches_pillow(tmp_path, monkeypatch):
    from affine_aug.pipeline import BadImage, _read_image, _read_netpbm

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 9), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.ppm")
    Image.fromarray(grey).save(tmp_path / "b.pgm")
    body = rgb.tobytes()
    files = {
        "a.ppm": None,
        "b.pgm": None,
        "comment.ppm": b"P6\n# made by hand\n11 7\n255\n" + body,  # a comment: Pillow reads it
        "spaces.ppm": b"P6   11\t7\r\n255 " + body,
        "maxval.ppm": b"P6 11 7 100\n" + (rgb // 3).tobytes(),  # another maxval: Pillow scales it
        "trailing.ppm": b"P6 11 7 255\n" + body + b"extra",
    }
    for name, data in files.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        ours, deep = _read_image(tmp_path / name)
        with Image.open(tmp_path / name) as im:
            np.testing.assert_array_equal(ours, np.asarray(im.convert("RGB")), err_msg=name)
        assert ours.flags.writeable and not deep
    assert _read_netpbm(tmp_path / "a.ppm") is not None and _read_netpbm(tmp_path / "comment.ppm") is None
    (tmp_path / "short.ppm").write_bytes(b"P6 11 7 255\n" + body[:-5])
    with pytest.raises(
        BadImage, match=r"short.ppm: corrupt or truncated image \(226 bytes of pixels, 11x7x3 expected\)"
    ):
        _read_image(tmp_path / "short.ppm")
    # only the header and the pixels are read, whatever follows them (a huge file is not read whole)
    (tmp_path / "long.ppm").write_bytes(b"P6 11 7 255\n" + body + bytes(1 << 20))
    reads = []

    class Counting(io.FileIO):
        def read(self, n=-1):
            reads.append(n)
            return super().read(n)

    monkeypatch.setattr(pipeline, "open", lambda path, mode: Counting(path, mode), raising=False)
    np.testing.assert_array_equal(_read_image(tmp_path / "long.ppm")[0], rgb)
    assert reads == [64, len(body)]
    monkeypatch.undo()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # Pillow's bomb check still applies
    with pytest.raises(BadImage, match="refused as a decompression bomb"):
        _read_image(tmp_path / "a.ppm")


def test_read_image_random_bytes_raise_bad_image(tmp_path):
    """Random and cut-off headers in .ppm/.pgm/.png files: an image or BadImage, nothing else."""
    from affine_aug.pipeline import BadImage, _read_image

    rng = np.random.default_rng(7)
    heads = [
        b"P6 11 7 255\n",
        b"P5 11 7 255\n",
        b"P6 0 7 255\n",
        b"P6 99999999 99999999 255\n",
        b"P6 11",
        b"P6\n11 7\n65535\n",
        b"P3 11 7 255\n",
        b"\x89PNG\r\n\x1a\n",
        b"",
    ]
    for i in range(60):
        head = heads[i % len(heads)]
        path = tmp_path / f"f{i}.{('ppm', 'pgm', 'png')[i % 3]}"
        path.write_bytes(head + rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes())
        try:
            img, _ = _read_image(path)
        except BadImage as e:
            assert str(e).startswith(str(path))
        else:
            assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


def test_synthetic_marker_alias_is_deprecated():
    from affine_aug.gtsrb.synthetic import _SYNTHETIC_MARKER

    new = "affine_aug.gtsrb.synthetic._SYNTHETIC_MARKER"
    with pytest.warns(DeprecationWarning, match=rf"^affine_aug.gtsrb.SYNTHETIC_MARKER is deprecated .*; use {new}$"):
        assert gtsrb.SYNTHETIC_MARKER == _SYNTHETIC_MARKER == "affine_aug_synthetic.json"
    with pytest.raises(AttributeError, match="module 'affine_aug.gtsrb' has no attribute 'nope'"):
        gtsrb.nope  # noqa: B018


def test_plan_rows_are_named():
    """A GTSRB plan row names its fields; its JSON is the list the shard records digest."""
    from affine_aug.gtsrb import GtsrbRow

    row = GtsrbRow(3, "GTSRB/a.ppm", 7, [5, 5, 20, 21], [30, 31], 2, "GT.csv:4")
    assert json.dumps(row) == json.dumps([3, "GTSRB/a.ppm", 7, [5, 5, 20, 21], [30, 31], 2, "GT.csv:4"])
    assert list(gtsrb.job.HOOKS.copies(None, row)) == [0, 1, 2]
