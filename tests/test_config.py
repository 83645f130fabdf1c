from pathlib import Path

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import ConfigError, Dist
from conftest import write

CONFIG_DIR = Path(__file__).parent.parent / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_defaults_are_identity():
    cfg = aa.load_config({})
    batch = aa.sample(cfg, np.arange(4), size=(5, 6))
    np.testing.assert_array_equal(batch.matrices, np.broadcast_to(np.eye(3), (4, 3, 3)))


def test_value_forms():
    cfg = aa.load_config(
        {
            "rotate": 15,
            "scale": [0.9, 1.1],
            "shear": {"x": {"dist": "normal", "mean": 0, "std": 5, "low": -10, "high": 10}, "y": 2},
            "translate": {"x": {"dist": "choice", "values": [-1, 0, 1], "weights": [1, 2, 1]}, "unit": "px"},
            "flip": {"horizontal": 0.5},
            "p": 0.7,
            "center": {"x": 0.25},
            "seed": 7,
        }
    )
    assert cfg.rotate == Dist.constant(15)
    assert cfg.scale_x == Dist("uniform", low=0.9, high=1.1) and cfg.scale_y is None
    assert cfg.shear_x.kind == "normal" and cfg.shear_x.low == -10
    assert cfg.shear_y == Dist.constant(2)
    assert cfg.translate_x.weights == (1.0, 2.0, 1.0) and cfg.translate_y == Dist.constant(0)
    assert cfg.translate_unit == "px" and cfg.flip_horizontal == 0.5 and cfg.flip_vertical == 0
    assert cfg.p == 0.7 and cfg.center_x == Dist.constant(0.25) and cfg.center_y == Dist.constant(0.5)
    assert cfg.seed == 7


def test_per_axis_scale_and_single_translate():
    cfg = aa.load_config({"scale": {"x": [0.5, 1]}, "translate": [-0.1, 0.1]})
    assert cfg.scale_y == Dist.constant(1.0)
    assert cfg.translate_x == cfg.translate_y == Dist("uniform", low=-0.1, high=0.1)


def test_scientific_notation_is_a_number(tmp_path):
    cfg = aa.load_config(write(tmp_path, "scale: {dist: loguniform, low: 5e-1, high: 2e0}\n"))
    assert cfg.scale_x.low == 0.5 and cfg.scale_x.high == 2.0


def test_frozen():
    cfg = aa.load_config({})
    with pytest.raises(AttributeError):
        cfg.p = 0.5


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_presets_load_and_round_trip_bit_for_bit(path, tmp_path):
    cfg = aa.load_config(path)
    out = tmp_path / "saved.yaml"
    aa.save_config(cfg, out)
    again = aa.load_config(out)
    assert again == cfg
    keys = np.arange(100)
    a, b = aa.sample(cfg, keys, size=(32, 40)), aa.sample(again, keys, size=(32, 40))
    assert np.array_equal(a.matrices, b.matrices)


def test_round_trip_of_awkward_floats(tmp_path):
    cfg = aa.load_config(
        {"rotate": [0.1 + 0.2, 1 / 3], "scale": {"dist": "loguniform", "low": 1e-3 + 1e-17, "high": 2 / 3}}
    )
    aa.save_config(cfg, tmp_path / "x.yaml")
    assert aa.load_config(tmp_path / "x.yaml") == cfg


def test_extends_merges_axes_and_replaces_values(tmp_path):
    write(
        tmp_path,
        "rotate: {dist: normal, mean: 0, std: 5}\ntranslate: {x: [-1, 1], y: [-2, 2], unit: px}\nseed: 3\n",
        "base.yaml",
    )
    child = write(tmp_path, "extends: base.yaml\nrotate: [-1, 1]\ntranslate: {y: 0}\n")
    cfg = aa.load_config(child)
    assert cfg.rotate == Dist("uniform", low=-1, high=1)
    assert cfg.translate_x == Dist("uniform", low=-1, high=1) and cfg.translate_y == Dist.constant(0)
    assert cfg.translate_unit == "px" and cfg.seed == 3


def test_extends_error_names_the_base_file(tmp_path):
    write(tmp_path, "p: 1\nrotate: [5, 1]\n", "base.yaml")
    child = write(tmp_path, "extends: base.yaml\np: 0.5\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:2: rotate: low > high"):
        aa.load_config(child)


def test_overrides():
    cfg = aa.load_config(CONFIG_DIR / "gtsrb.yaml", overrides=["rotate=[-30, 30]", "translate.unit=fraction", "seed=5"])
    assert cfg.rotate == Dist("uniform", low=-30, high=30) and cfg.translate_unit == "fraction" and cfg.seed == 5
    cfg = aa.load_config({"rotate": 1}, overrides={"scale.x": 2})
    assert cfg.scale_x == Dist.constant(2) and cfg.scale_y == Dist.constant(1)
    with pytest.raises(
        ConfigError, match=r"override 'rotate.low': rotate is 1.0, not a mapping; set rotate as a whole"
    ):
        aa.load_config({"rotate": 1.0}, overrides=["rotate.low=1"])
    with pytest.raises(ConfigError, match=r"override 'rotate': expected key.path=value"):
        aa.load_config({}, overrides=["rotate"])
    with pytest.raises(ConfigError, match=r"override 'p': p: expected a probability in \[0, 1\], got 2.0"):
        aa.load_config({}, overrides=["p=2"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, match",
    [
        ({"rotaton": 5}, r"<mapping>: rotaton: unknown key 'rotaton' \(did you mean 'rotate'\?\)"),
        ({"rotate": [5, 1]}, r"rotate: low > high in range \[5.0, 1.0\]"),
        ({"rotate": [1, 2, 3]}, r"rotate: expected a range \[low, high\], got a list of 3 items"),
        ({"scale": 0}, r"scale: scale must lie within \[0.001, 1000\], got 0.0"),
        ({"scale": [-1, 2]}, r"scale: scale must lie within \[0.001, 1000\], got \[-1.0, 2.0\]"),
        ({"scale": {"y": -2}}, r"scale\.y: scale must lie within \[0.001, 1000\], got -2.0"),
        (
            {"scale": {"dist": "normal", "mean": 1, "std": 0.2}},
            r"scale: scale must lie within \[0.001, 1000\], got \[-0.66.*, 2.66.*\] "
            r"\(a normal reaches mean \+- 8.3 std unless low/high truncate it\)",
        ),
        ({"shear": 90}, r"shear: shear must lie within \[-80, 80\] degrees, got 90.0"),
        ({"rotate": {"dist": "gauss", "mean": 0}}, r"rotate\.dist: unknown distribution 'gauss'"),
        ({"rotate": {"dist": "normall"}}, r"unknown distribution 'normall' \(did you mean 'normal'\?\)"),
        ({"rotate": {"dist": "normal", "mean": 0}}, r"rotate: distribution 'normal' needs 'std'"),
        ({"rotate": {"dist": "normal", "mean": 0, "std": 0}}, r"rotate\.std: std must be > 0, got 0.0"),
        ({"rotate": {"dist": "normal", "mean": 0, "std": 1, "low": 50, "high": 60}}, r"almost no probability mass"),
        (
            {"rotate": {"dist": "uniform", "low": 0, "hihg": 1}},
            r"rotate\.hihg: unknown key 'hihg' \(did you mean 'high'\?\)",
        ),
        ({"scale": {"dist": "loguniform", "low": 0, "high": 1}}, r"scale\.low: loguniform needs low > 0, got 0.0"),
        ({"rotate": {"dist": "choice", "values": []}}, r"rotate\.values: expected a non-empty list of numbers"),
        (
            {"rotate": {"dist": "choice", "values": [1, 2], "weights": [1]}},
            r"rotate\.weights: expected a list of 2 weights",
        ),
        (
            {"rotate": {"dist": "choice", "values": [1, 2], "weights": [-1, 2]}},
            r"weights must be >= 0 with a positive sum",
        ),
        ({"p": 1.5}, r"p: expected a probability in \[0, 1\], got 1.5"),
        ({"p": -0.1}, r"p: expected a probability in \[0, 1\], got -0.1"),
        ({"flip": {"horizontal": 2}}, r"flip\.horizontal: expected a probability in \[0, 1\], got 2.0"),
        ({"flip": 0.5}, r"flip: expected a mapping \{horizontal: prob, vertical: prob\}"),
        ({"flip": {"horizontl": 0.5}}, r"flip\.horizontl: unknown key 'horizontl' \(did you mean 'horizontal'\?\)"),
        ({"rotate": float("nan")}, r"rotate: expected a finite number, got nan"),
        ({"rotate": float("inf")}, r"rotate: expected a finite number, got inf"),
        ({"rotate": [0, float("inf")]}, r"rotate\[1\]: expected a finite number, got inf"),
        ({"rotate": "15"}, r"rotate: expected a number, got str '15'"),
        ({"rotate": True}, r"rotate: expected a number, got bool True"),
        ({"scale": {"x": "big"}}, r"scale\.x: expected a number, got str 'big'"),
        ({"translate": {"x": 1, "unit": "pixels"}}, r"translate\.unit: unknown unit 'pixels' \(did you mean 'px'\?\)"),
        ({"center": [0.5, 0.5]}, r"center: expected a mapping \{x: \.\.\., y: \.\.\.\}"),
        ({"order": ["scale", "rotate"]}, r"order: must list each of .* exactly once: missing \['shear', 'translate'\]"),
        ({"order": ["scale", "rotate", "rotate", "shear", "translate"]}, r"exactly once: repeated \['rotate'\]"),
        (
            {"order": ["scale", "rotat", "shear", "translate"]},
            r"order\[1\]: unknown step 'rotat' \(did you mean 'rotate'\?\)",
        ),
        ({"order": "scale"}, r"order: expected a list of steps"),
        ({"seed": -1}, r"seed: expected an integer in \[0, 2\*\*64\), got int -1"),
        ({"seed": 1.5}, r"seed: expected an integer"),
    ],
)
def test_bad_values(data, match):
    with pytest.raises(ConfigError, match=match):
        aa.load_config(data)


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_error_names_file_and_line(tmp_path):
    p = write(tmp_path, "rotate: [-15, 15]\nscale:\n  x: [0.9, 1.1]\n  y: [1.2, 0.8]\n")
    with pytest.raises(ConfigError, match=rf"{p}:4: scale\.y: low > high"):
        aa.load_config(p)
    p = write(tmp_path, "rotate: 1\nsclae: 2\n")
    with pytest.raises(ConfigError, match=rf"{p}:2: sclae: unknown key 'sclae' \(did you mean 'scale'\?\)"):
        aa.load_config(p)


@pytest.mark.parametrize(
    "text, match",
    [
        ("rotate: [1, 2\n", r":2: invalid YAML: expected ',' or ']'"),
        (
            "rotate: !!python/object/apply:os.system ['echo hi']\n",
            r":1: invalid YAML: could not determine a constructor .* safe and rejects tags",
        ),
        ("- 1\n- 2\n", r"a config must be a mapping of keys, got list"),
        ("rotate: 1\nrotate: 2\n", r":2: rotate: duplicate key"),
    ],
)
def test_bad_yaml(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        aa.load_config(write(tmp_path, text))


def test_unsafe_tag_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    p = write(tmp_path, f"rotate: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        aa.load_config(p)
    assert not marker.exists()


def test_missing_file_and_extends(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        aa.load_config(tmp_path / "nope.yaml")
    p = write(tmp_path, "extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1: extends: base config '.*missing\.yaml' not found"):
        aa.load_config(p)
    p = write(tmp_path, "extends: [1]\n")
    with pytest.raises(ConfigError, match=r"extends: expected a file path"):
        aa.load_config(p)


def test_extends_cycle(tmp_path):
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match=r"extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        aa.load_config(tmp_path / "a.yaml")


def test_wrong_source_type():
    with pytest.raises(ConfigError, match="config must be a file path, a mapping or an AffineConfig, got int"):
        aa.load_config(3)
