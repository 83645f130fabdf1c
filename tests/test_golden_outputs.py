"""Golden bytes: the SHA-256 of every file that ``generate`` (each format) and ``gtsrb``
write for a tiny fixed input, pinned, so that a change of the job engine's layout cannot
change its outputs unnoticed.

A deliberate change of the bytes (a new PNG encoder, another zip or Parquet writer) is a
reviewed edit of ``GOLDEN`` below, the one place the digests live. The digests hold for
the pinned dependencies of this environment: Parquet bytes name pyarrow's version, JPEG
and WebP bytes come from Pillow's codecs, PNG bytes from the deflate library the job names
(``png_encoder``): the cases run with zlib (``AFFINE_AUG_PNG_ENCODER=zlib``), which every
Python has, and the ``-libdeflate`` cases with libdeflate (skipped without the ``png``
extra).

What is not pinned, and why:

* ``OUT/.affine_aug.json`` (the packed state of the finished job): its shard records hold
  the seconds each shard took and the node (host name) that wrote it;
* ``OUT/.affine_aug.lock``: the pid of the last job that held the output;
* the manifest's ``seconds`` and ``timings`` (wall time), ``input`` (the test's temporary
  folder), its shards' ``node``, and ``version`` (it changes with each release). The rest
  of the manifest is pinned, as the digest of its JSON without those keys. For ``gtsrb``
  the ``input_digest`` is left out too: it lists the absolute paths of the CSVs' images.

The inputs' modification times are set to a fixed value, so that ``generate``'s
``input_digest`` (relative path, size and time of each source) is the same on every run.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug.cli import main
from affine_aug.gtsrb import make_synthetic

# Each case: its files -> sha256. "manifest" is the digest of the manifest without the
# keys named in the module docstring.
GOLDEN = {
    "folder": {
        "ants/0_png_000.png": "455acc23e84cbbd0ab90443e425b00996e040a00999b3a56806fba8dfb084bf3",
        "ants/0_png_001.png": "e737c8891a85cd7f5290615844e507f0952513455e8d99be9dd9d768908f7fb2",
        "ants/1_png_000.png": "b76572efc1c4768eb224dd5a7afa9d64d4fd416d178b0a79054ed2972e266ac0",
        "ants/1_png_001.png": "d3600f17ca22c238b7c0f71a1a21ff838f17483a71a285aa99332bac2f064707",
        "ants/2_png_000.png": "596b55c8a9cf9f2deb82f1c981ab282c2f607478de5afe7fc12a597ba6dde89f",
        "ants/2_png_001.png": "68e41a4b05d95200b59d7da2a38aab5bfdd932f78c8e04a9be196a9fc4870471",
        "bees/3_png_000.png": "834d93bbaabc5ab3e1dcdafe96f9aa0a9808aaf859083232017c6b78a129faea",
        "bees/3_png_001.png": "4ec44f049739a804b9583afb000a1fa6d858787df5711d4e62522403fd4ad902",
        "bees/4_png_000.png": "2ae03b5f6bc93756c47aaf4564a7d0e61c86658026b1bfe3f6962f8f11a12804",
        "bees/4_png_001.png": "106d412a860ad820457c366578ecc3d6c262934d9dd61db96f29d54252a0675b",
        "bees/5_png_000.png": "cc67c6fc0145b8ac534b834c9433ea45120b2ce0208db6b8fd2eeb563711bd91",
        "bees/5_png_001.png": "8adf67fe3fd85e5c0076f5a54e785096a7d70bbec17e37b7583092e50c656cc5",
        "manifest": "e8a3ad90df75661019769709d044439d23337e121a14faf4239dba64f9a8228b",
    },
    "npz": {
        "manifest": "f29d101e424051d2d18f6ed61087cab5fb0f56c3c3b90584bcb55a295ba09ea9",
        "part-00000.npz": "63d405e6efc29f15edbe4d76942e78e70bacfc712e8cea69e06e82f207e50acd",
        "part-00001.npz": "d49ed669771db4fab99ce8e8dd7faad6827fc0659fb35e40aa433b362268a014",
    },
    "webdataset": {
        "manifest": "76bc0b4ef17f5eb8b4075bd04db5b5a9303d88e5c16768fd0a579263b67cbe4b",
        "part-00000.tar": "c1be3c8fef8e52e2a0b32ff2b1e275d5725f4960e84e31f2b3599a9d6cd83d32",
        "part-00001.tar": "42ce3a6b5a2413af745608101cf725031f07b929d11713d01e371473e955fa98",
    },
    "parquet": {
        "manifest": "21a29e9c8830933c16b4196dd861ab2539a79a67a79e8a0de2cdbf435dc3f779",
        "part-00000.parquet": "f7b21a955a5118fa2cefbb632376f37839296e59bc1f03c33018f52dfc94c65c",
        "part-00001.parquet": "966f898de2379d2f4809535af1da90364804918dfb96f61edcba2fb3e51ce2a1",
    },
    "folder-jpg": {
        "ants/0_png_000.jpg": "42259066815176c7b143819eea6fc13183948a33b0ca0d13b8662fd857ed143c",
        "ants/0_png_001.jpg": "807cfe6549629b6d4fe97a0bd4dfb176cad019bb6b70441aff43c5cc0f050346",
        "ants/1_png_000.jpg": "6dc29a3fcf93831352c3e8f163701cf10717dfc7315def85915452ca5b434111",
        "ants/1_png_001.jpg": "090c4e055cc3677d6661f169721d8ba56c29ee562aad86bf61331e3494f5ebe3",
        "ants/2_png_000.jpg": "2fffc6ca5cb87282930102fd5930291252df02634d7be0d9ddad35ec249eaf0f",
        "ants/2_png_001.jpg": "0576aa4122316bf269680acd3a5f4d78e706db2f0e6c22cb4c274a3bc49e51ee",
        "bees/3_png_000.jpg": "5a2dd1a94374c7246f17728f02654f3e1d383cdbcf4e419b8bf4423075e0c5e6",
        "bees/3_png_001.jpg": "965d1be554ddd809bf8f2d0262e29a9cb2b4969778a2d3018d0d723de99905f6",
        "bees/4_png_000.jpg": "32c0dbcc2e3a652e4efe7031db9f35263abfd66104b7c784cabdcf7f92be859f",
        "bees/4_png_001.jpg": "397c2924189cb754b123712c3302337490803d0ea852ce004e46f89ca4588ea2",
        "bees/5_png_000.jpg": "c4f2159ba97845e0f5f2e32b1b918fb5317d24f8f21b246ff15f94f93f98db87",
        "bees/5_png_001.jpg": "b4a1a3ef679307d3a757915489c537571066d4e229454ab9adb699bc36428931",
        "manifest": "cd823e40ada5bd596ac18c69b95f4d3e671b54b13130cda8464e58b3a97eaf0b",
    },
    "folder-libdeflate": {
        "ants/0_png_000.png": "455acc23e84cbbd0ab90443e425b00996e040a00999b3a56806fba8dfb084bf3",
        "ants/0_png_001.png": "e737c8891a85cd7f5290615844e507f0952513455e8d99be9dd9d768908f7fb2",
        "ants/1_png_000.png": "b76572efc1c4768eb224dd5a7afa9d64d4fd416d178b0a79054ed2972e266ac0",
        "ants/1_png_001.png": "d3600f17ca22c238b7c0f71a1a21ff838f17483a71a285aa99332bac2f064707",
        "ants/2_png_000.png": "596b55c8a9cf9f2deb82f1c981ab282c2f607478de5afe7fc12a597ba6dde89f",
        "ants/2_png_001.png": "68e41a4b05d95200b59d7da2a38aab5bfdd932f78c8e04a9be196a9fc4870471",
        "bees/3_png_000.png": "834d93bbaabc5ab3e1dcdafe96f9aa0a9808aaf859083232017c6b78a129faea",
        "bees/3_png_001.png": "4ec44f049739a804b9583afb000a1fa6d858787df5711d4e62522403fd4ad902",
        "bees/4_png_000.png": "2ae03b5f6bc93756c47aaf4564a7d0e61c86658026b1bfe3f6962f8f11a12804",
        "bees/4_png_001.png": "106d412a860ad820457c366578ecc3d6c262934d9dd61db96f29d54252a0675b",
        "bees/5_png_000.png": "cc67c6fc0145b8ac534b834c9433ea45120b2ce0208db6b8fd2eeb563711bd91",
        "bees/5_png_001.png": "8adf67fe3fd85e5c0076f5a54e785096a7d70bbec17e37b7583092e50c656cc5",
        "manifest": "5c27bff1a2867f957a489e0554ee0c8e9cd4b19da68ebfba7e751267e5158224",
    },
    "webdataset-libdeflate": {
        "manifest": "fe44d0f44b1db413f0f23de6cea91843a44830019671deec4efdc4cb0f1640cd",
        "part-00000.tar": "c1be3c8fef8e52e2a0b32ff2b1e275d5725f4960e84e31f2b3599a9d6cd83d32",
        "part-00001.tar": "42ce3a6b5a2413af745608101cf725031f07b929d11713d01e371473e955fa98",
    },
    "webdataset-webp": {
        "manifest": "e794c50bfd8d480c499b0ddf541abc0e4d8c41dec000937706864ef39b09d9f8",
        "part-00000.tar": "eabd3857a821a245d7b984daf56e63eac08626c4c5bebbf64960aea42c57f8f7",
        "part-00001.tar": "fe36998317cb0e5e4f2940b7d61dcfc26bd4a5bf0abf3edfc2e1d7e7fe721937",
    },
    "gtsrb-synthetic": {
        "files": 190,
        "table": "1dc3867de374197decaea60dcc399e80c6346afb7855f703a73ec41497d6b0a8",
    },
    "gtsrb-npz": {
        "manifest": "aff08b027f3d8e7283ebbffcef808a5b09d7e7e3ba7949d6d35021647c1c60d5",
        "test.npz": "b3d1c9b0c268373e676502394fe2c16718fb38055447ce279ee43f75a0b3ae85",
        "train.npz": "98892a99f1d554202c0a58af3c84447c32a246dfd93a9c4791b6db7e81f27306",
        "val.npz": "dcc4e707aa808ed9b1460aba575beab117d5e1e26c9d284f2f7b640a12133264",
    },
}

CASES = {
    "folder": ["--format", "folder"],
    "npz": ["--format", "npz", "--size", "16", "16"],
    "webdataset": ["--format", "webdataset", "--size", "16", "16"],
    "parquet": ["--format", "parquet", "--size", "16", "16"],
    "folder-jpg": ["--format", "folder", "--image-format", "jpg", "--quality", "90"],
    "webdataset-webp": ["--format", "webdataset", "--image-format", "webp", "--size", "12", "12"],
    "folder-libdeflate": ["--format", "folder"],
    "webdataset-libdeflate": ["--format", "webdataset", "--size", "16", "16"],
}
FIXED_NS = 1_600_000_000 * 10**9  # the inputs' mtime (part of generate's input digest)
UNPINNED = {".affine_aug.json", ".affine_aug.lock"}
VOLATILE = {"seconds", "timings", "input", "version"}


def _tree(root: Path) -> Path:
    """6 images of 16x16 in 2 classes, fixed content and time."""
    rng = np.random.default_rng(7)
    for k in range(6):
        path = root / ("ants" if k < 3 else "bees") / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        os.utime(path, ns=(FIXED_NS, FIXED_NS))
    return root


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(path: Path, also_volatile=()) -> str:
    m = json.loads(path.read_text())
    for key in VOLATILE | set(also_volatile):
        m.pop(key, None)
    for shard in m["shards"]:
        shard.pop("node", None)
    return _sha(json.dumps(m, sort_keys=True).encode())


def _digests(out: Path, also_volatile=()) -> dict:
    found = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if not p.is_file() or rel in UNPINNED:
            continue
        if p.name in ("manifest.json", "_manifest.json"):
            found["manifest"] = _manifest_digest(p, also_volatile)
        else:
            found[rel] = _sha(p.read_bytes())
    return found


def _check(case: str, found: dict) -> None:
    assert found == GOLDEN[case], json.dumps(found, indent=1, sort_keys=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_generate_bytes_are_pinned(tmp_path, monkeypatch, case):
    encoder = "libdeflate" if case.endswith("-libdeflate") else "zlib"
    if encoder == "libdeflate":
        pytest.importorskip("deflate", reason="the png extra (libdeflate) is not installed")
    monkeypatch.setenv("AFFINE_AUG_PNG_ENCODER", encoder)
    src = _tree(tmp_path / "in")
    out = tmp_path / "out"
    args = ["generate", "--config", "mild", "--input", str(src), "--output", str(out), "--copies", "2"]
    assert main([*args, "--seed", "3", "--shard-size", "4", "--quiet", *CASES[case]]) == 0
    _check(case, _digests(out))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("gtsrb")
    make_synthetic(root, tracks_per_class=2, frames=2, test_per_class=1, seed=5)
    return root


def test_synthetic_gtsrb_bytes_are_pinned(synthetic):
    """The painter's files (PPM images, CSVs, marker) as one digest of their table."""
    files = [p for p in sorted(synthetic.rglob("*")) if p.is_file()]
    table = "".join(f"{p.relative_to(synthetic).as_posix()}\t{_sha(p.read_bytes())}\n" for p in files)
    _check("gtsrb-synthetic", {"files": len(files), "table": _sha(table.encode())})


def test_gtsrb_npz_bytes_are_pinned(synthetic, tmp_path):
    out = tmp_path / "out"
    args = ["gtsrb", "--root", str(synthetic), "--out", str(out), "--size", "16", "--copies", "1"]
    assert main([*args, "--seed", "2", "--shard-size", "16", "--quiet"]) == 0
    _check("gtsrb-npz", _digests(out, also_volatile={"input_digest"}))
