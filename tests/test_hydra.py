"""Hydra / OmegaConf: DictConfig wherever a config mapping is accepted, ``_target_`` builds
every public class and the presets, interpolations resolve before validation."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from affine_aug import AffineConfig, ConfigError, load_config

omegaconf = pytest.importorskip("omegaconf")
hydra_utils = pytest.importorskip("hydra.utils")
OmegaConf = omegaconf.OmegaConf
instantiate = hydra_utils.instantiate

ROTATE = {"rotate": [-10, 10], "scale": {"dist": "loguniform", "low": 0.8, "high": 1.25}, "flip": {"horizontal": 0.5}}


def test_import_does_not_import_omegaconf():
    code = "import sys, affine_aug; affine_aug.load_config({'rotate': 3}); print('omegaconf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_dictconfig_equals_plain_mapping():
    assert load_config(OmegaConf.create(ROTATE)) == load_config(ROTATE)


def test_nested_dictconfig_node_and_overrides():
    root = OmegaConf.create({"aug": ROTATE, "other": 1})
    assert load_config(root.aug) == load_config(ROTATE)
    over = OmegaConf.create(["rotate=[-5, 5]"])
    assert load_config(root.aug, overrides=over).rotate == load_config({"rotate": [-5, 5]}).rotate
    assert load_config(root.aug, overrides=OmegaConf.create({"p": 0.5})).p == 0.5


def test_interpolation_resolved_before_validation():
    root = OmegaConf.create({"max_angle": 20, "aug": {"rotate": ["${neg:${max_angle}}", "${max_angle}"]}})
    OmegaConf.register_new_resolver("neg", lambda x: -x, replace=True)
    assert load_config(root.aug) == load_config({"rotate": [-20, 20]})


def test_interpolation_error_names_the_key():
    root = OmegaConf.create({"aug": {"rotate": [-5, 5], "scale": "${nowhere}"}})
    with pytest.raises(
        ConfigError, match=r"<mapping>: aug\.scale: cannot resolve the value: Interpolation key 'nowhere' not found$"
    ):
        load_config(root.aug)


def test_missing_value_names_the_key():
    with pytest.raises(
        ConfigError, match=r"<mapping>: shear: cannot resolve the value: Missing mandatory value: shear$"
    ):
        load_config(OmegaConf.create({"shear": "???"}))


def test_resolved_value_still_validated_at_its_key():
    root = OmegaConf.create({"lo": 5, "aug": {"rotate": ["${lo}", 1]}})
    with pytest.raises(ConfigError, match=r"<mapping>: rotate: low > high in range \[5.0, 1.0\]"):
        load_config(root.aug)
    with pytest.raises(ConfigError, match=r"<mapping>: scale.hight: unknown key 'hight' \(did you mean 'high'\?\)"):
        load_config(OmegaConf.create({"scale": {"dist": "uniform", "low": 1, "hight": 2}}))


# ----------------------------------------------------------------------------- instantiate


def test_instantiate_load_config_preset_and_mapping():
    mild = instantiate({"_target_": "affine_aug.load_config", "source": "mild"})
    assert isinstance(mild, AffineConfig) and mild == load_config("mild")
    built = instantiate({"_target_": "affine_aug.load_config", "source": ROTATE, "overrides": ["p=0.25"]})
    assert built == load_config(ROTATE, overrides=["p=0.25"])


@pytest.mark.parametrize("convert", ["none", "partial", "all", "object"])
def test_instantiate_random_affine(convert):
    torch = pytest.importorskip("torch")
    from affine_aug.torch import RandomAffine

    seen = {}

    class Spy:  # records what Hydra hands to the class for each _convert_
        def __init__(self, config, **kw):
            seen["type"] = type(config).__name__

    spec = {
        "_target_": "affine_aug.torch.RandomAffine",
        "config": {"rotate": [-10, 10]},
        "seed": 0,
        "_convert_": convert,
    }
    t = instantiate(spec)
    assert isinstance(t, RandomAffine) and t.seed == 0
    assert t.config == load_config({"rotate": [-10, 10]})
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    ref = RandomAffine({"rotate": [-10, 10]}, seed=0)
    assert torch.equal(t(x), ref(x))
    sys.modules[__name__].Spy = Spy
    instantiate({**spec, "_target_": f"{__name__}.Spy"})
    assert seen["type"] == ("DictConfig" if convert == "none" else "dict")


def test_instantiate_random_affine_preset_by_name():
    pytest.importorskip("torch")
    t = instantiate({"_target_": "affine_aug.torch.RandomAffine", "config": "strong", "seed": 3, "border": "edge"})
    assert t.config == load_config("strong") and t.border == "edge"


def test_instantiate_augmented_dataset():
    torch = pytest.importorskip("torch")
    from affine_aug.torch import AugmentedDataset

    data = torch.utils.data.TensorDataset(torch.rand(3, 1, 8, 8), torch.arange(3))  # an object: Hydra passes it as is
    ds = instantiate(
        {"_target_": "affine_aug.torch.AugmentedDataset", "config": {"rotate": [-30, 30]}, "seed": 1}, dataset=data
    )
    assert isinstance(ds, AugmentedDataset) and len(ds) == 3
    ref = AugmentedDataset(data, {"rotate": [-30, 30]}, seed=1)
    assert torch.equal(ds[2][0], ref[2][0]) and ds[2][1] == 2


def test_instantiate_spatial_transformer():
    torch = pytest.importorskip("torch")
    from affine_aug.torch import SpatialTransformer

    st = instantiate(
        {"_target_": "affine_aug.torch.SpatialTransformer", "in_channels": 1, "family": "rts", "out_size": [12, 12]}
    )
    assert isinstance(st, SpatialTransformer) and st.family == "rts" and st.out_size == (12, 12)
    assert st(torch.rand(2, 1, 16, 16)).shape == (2, 1, 12, 12)


def test_instantiate_hf_shells():
    from affine_aug.hf import MapAugment, OnTheFly

    images = np.arange(2 * 6 * 6 * 3, dtype=np.uint8).reshape(2, 6, 6, 3)
    m = instantiate(
        {"_target_": "affine_aug.hf.MapAugment", "config": {"rotate": [-20, 20]}, "seed": 4, "size": [5, 5]}
    )
    assert isinstance(m, MapAugment) and m.size == (5, 5)
    ref = MapAugment({"rotate": [-20, 20]}, seed=4, size=(5, 5))
    assert np.array_equal(
        np.asarray(m({"image": list(images)}, [0, 1])["image"]),
        np.asarray(ref({"image": list(images)}, [0, 1])["image"]),
    )
    o = instantiate(
        {"_target_": "affine_aug.hf.OnTheFly", "config": OmegaConf.create({"rotate": 5}), "per_epoch": True}
    )
    assert isinstance(o, OnTheFly) and o.config == load_config({"rotate": 5}) and o.per_epoch


def test_instantiate_ray_affine_augment():
    from affine_aug.ray import AffineAugment

    a = instantiate({"_target_": "affine_aug.ray.AffineAugment", "config": {"shear": [-5, 5]}, "seed": 2})
    assert isinstance(a, AffineAugment) and a.config == load_config({"shear": [-5, 5]}) and a.seed == 2


def test_instantiate_plan_generate(tmp_path):
    from PIL import Image

    from affine_aug.jobs import plan_generate

    (tmp_path / "in" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "in" / "cat" / "a.png")
    job = instantiate(
        {
            "_target_": "affine_aug.jobs.plan_generate",
            "input": str(tmp_path / "in"),
            "output": str(tmp_path / "out"),
            "config": {"rotate": [-10, 10]},
            "copies": 2,
        }
    )
    ref = plan_generate(tmp_path / "in", tmp_path / "out", config={"rotate": [-10, 10]}, copies=2)
    assert type(job) is type(ref) and job == ref
    assert not (tmp_path / "out").exists()


def test_instantiate_bad_config_names_the_key():
    pytest.importorskip("torch")
    with pytest.raises(Exception, match=r"rotate: expected a range \[low, high\], got a list of 3 items"):
        instantiate({"_target_": "affine_aug.torch.RandomAffine", "config": {"rotate": [1, 2, 3]}})


# ----------------------------------------------------------------------------- the example sweep


def test_hydra_digits_sweep_and_collect(tmp_path):
    """examples/hydra_digits at its smallest: a three-config sweep, then the collector's table."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    example = root / "examples" / "hydra_digits"
    sweep = tmp_path / "sweep"
    run = subprocess.run(
        [
            sys.executable,
            str(example / "train.py"),
            "-m",
            "aug=identity,mild,stn_rts",
            "train.epochs=1",
            "train.n_train=48",
            "train.n_test=32",
            "train.batch=16",
            "train.threads=1",
            f"hydra.sweep.dir={sweep}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = sorted(sweep.glob("*/result.json"))
    assert [p.parent.name for p in results] == ["0_identity", "1_mild", "2_stn_rts"]
    import json

    for p in results:
        r = json.loads(p.read_text())
        assert 0.0 <= r["test_error"] <= 1.0 and r["n_train"] == 48 and r["n_test"] == 32 and r["epochs"] == 1
        assert load_config(r["config"]) == load_config(r["aug"])  # the preset the group file names
    out = subprocess.run(
        [sys.executable, str(example / "collect.py"), str(sweep)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    table = (sweep / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| aug")]
    assert [row.split(" | ")[0][2:] for row in rows] == ["identity", "mild", "stn_rts"]
    assert all(re.search(r"\| \d+\.\d\d ± 0\.00 % \| 1 \|$", row) for row in rows), table
    assert (sweep / "results.png").stat().st_size > 1000
    empty = subprocess.run(
        [sys.executable, str(example / "collect.py"), str(tmp_path / "run")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 1 and "no result.json under" in empty.stderr


def test_hydra_digits_groups_compose_and_instantiate():
    """Every file of the aug group builds its RandomAffine; the inline one resolves its interpolations."""
    pytest.importorskip("torch")
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[1] / "examples" / "hydra_digits" / "conf"
    OmegaConf.register_new_resolver("negate", lambda x: -float(x), replace=True)  # as train.py registers it
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for name in ("identity", "mild", "strong", "stn_rts"):
            cfg = compose("config", overrides=[f"aug={name}", "train.seed=4"])
            t = instantiate(cfg.aug)
            assert t.config == load_config(name) and t.seed == 4 and t.border == "constant"
        t = instantiate(compose("config", overrides=["aug=rotate_only", "+max_angle=45"]).aug)
        assert t.config == load_config({"rotate": [-45, 45]})
        t = instantiate(compose("config", overrides=["aug=rotate_only"]).aug)
        assert t.config == load_config({"rotate": [-30, 30]})
