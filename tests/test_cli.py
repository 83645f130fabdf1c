import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug.cli import main
from affine_aug.gtsrb import make_synthetic
from conftest import run_cli


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_demo_end_to_end(tmp_path, capsys):
    code, out, err = run(["demo", "--out", tmp_path / "demo", "--quiet"], capsys)
    assert code == 0, err
    assert "previews" in out and "manifest" in out
    d = np.load(tmp_path / "demo" / "gtsrb32" / "train.npz")
    assert d["x"].shape[1:] == (32, 32, 3) and np.bincount(d["copy"]).tolist() == [len(d["x"]) // 6] * 6
    assert (tmp_path / "demo" / "previews" / "overview.png").is_file()
    assert len(list((tmp_path / "demo" / "previews").glob("class_*.png"))) == 43


def test_console_script_runs(tmp_path):
    r = run_cli("validate", "gtsrb")
    assert r.returncode == 0 and "rotate" in r.stdout


def test_validate_prints_resolved_and_summary(tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("rotate: [-10, 10]\nscale: [0.5, 2.0]\n")
    child = tmp_path / "c.yaml"
    child.write_text("extends: base.yaml\nrotate: 5\n")
    code, out, _ = run(["validate", child, "--set", "shear=3"], capsys)
    assert code == 0
    assert "rotate: 5.0" in out and "- 0.5" in out and "x: 3.0" in out
    row = next(line for line in out.splitlines() if line.startswith("scale_x"))
    mean, std, lo = (float(v) for v in row.split()[1:4])
    assert 1.1 < mean < 1.4 and lo >= 0.5


def test_preview_with_boxes_and_points(tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(img)
    code, out, _ = run(
        ["preview", "mild", img, "--n", "3", "--out", tmp_path / "g.png", "--box", "10,10,30,30", "--point", "25,20"],
        capsys,
    )
    assert code == 0 and "wrote" in out
    g = np.asarray(Image.open(tmp_path / "g.png"))
    assert g.shape[1] > 4 * 50 and (g == (255, 0, 255)).all(-1).any()  # box drawn
    code, _, _ = run(["preview", "strong", "--out", tmp_path / "t.png", "--n", "4"], capsys)  # built-in pattern
    assert code == 0
    with Image.open(tmp_path / "t.png") as im:
        assert im.size[0] > 96 * 4


def test_preview_of_a_16_bit_source_scales_and_says_so(tmp_path, capsys):
    deep = tmp_path / "deep.png"
    Image.fromarray((np.arange(30 * 40).reshape(30, 40) * 50).astype(np.uint16)).save(deep)
    code, _, err = run(["preview", "identity", deep, "--n", "1", "--out", tmp_path / "g.png"], capsys)
    assert code == 0 and "16-bit source scaled to 8 bits (rounded, not clipped)" in err
    tile = np.asarray(Image.open(tmp_path / "g.png"))[2:32, 2:42, 0].astype(np.int64)  # the input tile
    expect = np.floor(np.arange(30 * 40).reshape(30, 40) * 50 * 255 / 65535 + 0.5)
    assert np.array_equal(tile, expect) and tile.max() < 255  # scaled, not clipped to white


def _folder(tmp_path):
    root = tmp_path / "in"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (20 + k, 24, 3), dtype=np.uint8)).save(root / cls / f"{k}.png")
    return root


def test_generate_folder_resumes_and_is_keyed(tmp_path, capsys):
    root = _folder(tmp_path)
    out = tmp_path / "out"
    args = ["generate", "--config", "mild", "--input", root, "--output", out, "--copies", "2", "--seed", "4", "--quiet"]
    code, msg, err = run(args, capsys)
    assert code == 0, err
    files = sorted(out.rglob("*.png"))
    assert len(files) == 12 and "wrote 12 images" in msg
    first = {f: f.read_bytes() for f in files}
    files[0].unlink()
    code, msg, _ = run(args, capsys)
    assert code == 0 and "(0 of 1 shards were already complete" not in msg  # the damaged shard was redone
    assert {f: f.read_bytes() for f in sorted(out.rglob("*.png"))} == first  # the redone file is identical
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 4 and manifest["copies"] == 2 and manifest["config"]["p"] == 0.8


def test_generate_npz_with_size(tmp_path, capsys):
    root = _folder(tmp_path)
    code, _, err = run(
        [
            "generate",
            "--config",
            "gtsrb",
            "--input",
            root,
            "--output",
            tmp_path / "o",
            "--copies",
            "3",
            "--size",
            "16",
            "16",
            "--format",
            "npz",
            "--quiet",
            "--set",
            "rotate=0",
        ],
        capsys,
    )
    assert code == 0, err
    d = np.load(tmp_path / "o" / "part-00000.npz")
    assert d["x"].shape == (18, 16, 16, 3) and sorted(set(d["y"].tolist())) == [0, 1]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["config"]["rotate"] == 0.0


def test_gtsrb_command_and_script(tmp_path, capsys):
    make_synthetic(tmp_path / "data", tracks_per_class=2, frames=2, test_per_class=1)
    code, out, err = run(
        [
            "gtsrb",
            "--root",
            tmp_path / "data",
            "--out",
            tmp_path / "o",
            "--copies",
            "1",
            "--quiet",
            "--set",
            "rotate=[-5, 5]",
        ],
        capsys,
    )
    assert code == 0, err and "wrote" in out
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["config"]["rotate"] == [-5.0, 5.0]
    r = subprocess.run(
        [
            sys.executable,
            "scripts/preprocess_gtsrb.py",
            "--root",
            tmp_path / "data",
            "--out",
            tmp_path / "o2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=str(Path(__file__).parent.parent),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o2" / "train.npz").is_file()


@pytest.mark.parametrize(
    "args, code, match",
    [
        (
            ["validate", "nope"],
            2,
            r"nope: config file not found \(a path, or a preset: gtsrb, identity, mild, stn_rts, strong\)",
        ),
        (["validate", "gtsrb", "--set", "rotat=1"], 2, r"rotate'\?\)"),
        (["validate", "gtsrb", "--set", "p=3"], 2, r"p: expected a probability in \[0, 1\], got 3.0"),
        (
            ["generate", "--config", "gtsrb", "--input", "/nonexistent", "--output", "x", "--copies", "1"],
            2,
            r"--input /nonexistent: not a folder",
        ),
        (["preview", "gtsrb", "--out", "x.png", "--box", "1,2,3"], 2, r"--box must be 4 comma-separated numbers"),
        (["gtsrb", "--root", ".", "--out", "x"], 1, r"bad data: .*no GTSRB layout found"),
    ],
)
def test_errors_and_exit_codes(args, code, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got, out, err = run(args, capsys)
    assert got == code
    assert err.startswith("affine-aug: ") and "Traceback" not in err
    assert re.search(match, err), err


def test_corrupt_image_exit_code(tmp_path, capsys):
    make_synthetic(tmp_path / "data", tracks_per_class=1, frames=2, test_per_class=1)
    victim = tmp_path / "data" / "GTSRB" / "Final_Training" / "Images" / "00000" / "00000_00001.ppm"
    victim.write_bytes(victim.read_bytes()[:50])
    code, _, err = run(["gtsrb", "--root", tmp_path / "data", "--out", tmp_path / "o", "--quiet"], capsys)
    assert code == 1 and "00000_00001.ppm: corrupt or truncated image" in err and "GT-00000.csv:3" in err
    code, out, _ = run(["gtsrb", "--root", tmp_path / "data", "--out", tmp_path / "o", "--quiet", "--skip-bad"], capsys)
    assert code == 0 and "1 skipped" in out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--config", "x"])
    assert e.value.code == 2
