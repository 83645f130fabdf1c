"""The tuning page's server without a browser: rendering against the library, validation
at the key, bounded uploads, no reads outside the given roots, safe saving, local binding,
concurrent requests."""

from __future__ import annotations

import base64
import io
import re
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
from PIL import Image
from starlette.testclient import TestClient

import affine_aug as aa
from affine_aug.tune.configs import compact, parse_text, to_yaml
from affine_aug.tune.render import encode_jpeg
from affine_aug.tune.server import State, make_app
from affine_aug.tune.sources import MAX_PIXELS, MAX_UPLOAD_BYTES, Sources, pattern_image

ROOT = Path(__file__).resolve().parents[1]


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def roots(tmp_path):
    """A folder with two images, an image and a secret outside it, and a symlink leaving it."""
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)).save(folder / "sub" / "big.jpg")
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "secret.png")
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    return tmp_path


@pytest.fixture
def client(roots):
    save = roots / "saved"
    save.mkdir()
    state = State(Sources.from_paths([roots / "pics"]), aa.load_config("mild"), save_dir=save.resolve())
    return TestClient(make_app(state), base_url="http://127.0.0.1:8765")


def decode(tile: str) -> np.ndarray:
    assert tile.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(tile.split(",", 1)[1]))))


# ----------------------------------------------------------------------------- rendering


def test_render_matches_the_library(client):
    body = {
        "yaml": "rotate: [-30, 30]\nscale: [0.8, 1.2]\n",
        "seed": 5,
        "key_start": 100,
        "n": 4,
        "size": 224,
        "border": "edge",
        "boxes": [[10, 20, 60, 90]],
        "points": [[30.0, 40.0]],
    }
    r = client.post("/api/render", json=body)
    d = r.json()
    assert r.status_code == 200 and d["ok"], d
    cfg = aa.load_config({"rotate": [-30, 30], "scale": [0.8, 1.2]})
    img = pattern_image()
    batch = aa.sample(cfg, np.arange(100, 104), size=img.shape[:2], seed=5)
    assert d["keys"] == [100, 101, 102, 103]
    np.testing.assert_array_equal(d["params"]["rotate"], batch.params["rotate"])
    ref = aa.warp_affine(np.stack([img] * 4), batch.matrices, border="edge")
    for tile, want in zip(d["tiles"], ref):
        got = decode(tile)
        assert got.shape == (224, 224, 3)
        assert np.array_equal(got, decode(encode_jpeg(want)))  # the library's warp, JPEG-encoded as the page gets it
    for marks, m in zip(d["marks"], batch.matrices):
        np.testing.assert_allclose(marks["boxes"], aa.transform_boxes(np.array([[10, 20, 60, 90]]), m))
        np.testing.assert_allclose(marks["points"], aa.transform_points(np.array([[30.0, 40.0]]), m))
        assert len(marks["quads"]) == 4
    assert d["config"] == cfg.to_dict()
    assert d["yaml"] is None  # text in: the editor keeps its text


def test_identity_tiles_are_the_input(client):
    from affine_aug.tune.sources import shrink

    d = client.post("/api/render", json={"config": {}, "n": 2, "size": 64}).json()
    assert d["tiles"][0] == d["tiles"][1]
    assert np.array_equal(decode(d["tiles"][0]), decode(encode_jpeg(shrink(pattern_image(), 64))))
    assert d["hist"]["rotate"] == {"constant": 0.0} and d["hist"]["applied"] == {"fraction": 1.0}


def test_controls_mapping_comes_back_as_yaml_that_loads_equal(client):
    mapping = {
        "rotate": {"dist": "normal", "mean": 0, "std": 10, "low": -20, "high": 20},
        "scale": {"x": [0.9, 1.1], "y": 1.0},
        "shear": {"x": 0, "y": {"dist": "choice", "values": [-5, 0, 5], "weights": [1, 2, 1]}},
        "translate": {"x": 0, "y": [-4, 4], "unit": "px"},
        "flip": {"horizontal": 0.5, "vertical": 0},
        "p": 0.9,
        "order": ["rotate", "scale", "shear", "translate"],
        "center": {"x": 0.5, "y": 0.25},
        "seed": 7,
    }
    d = client.post("/api/render", json={"config": mapping, "n": 1, "size": 64}).json()
    assert d["ok"]
    assert parse_text(d["yaml"]) == aa.load_config(mapping)
    assert aa.load_config(d["config"]) == aa.load_config(mapping)


@pytest.mark.parametrize("name", ["mild", "strong", "stn_rts", "gtsrb", "identity"])
def test_compact_yaml_of_presets_loads_equal(name):
    cfg = aa.load_config(name)
    assert parse_text(to_yaml(compact(cfg))) == cfg


def test_histograms_bin_the_keyed_draws(client):
    d = client.post("/api/render", json={"yaml": "rotate: [-10, 20]", "n": 1, "size": 64, "seed": 3}).json()
    h = d["hist"]["rotate"]
    draws = aa.sample({"rotate": [-10, 20]}, np.arange(4096), size=(64, 64), seed=3).params["rotate"]
    counts, edges = np.histogram(draws, bins=32, range=(draws.min(), draws.max()))
    assert h["counts"] == counts.tolist() and np.allclose(h["edges"], edges)


def test_histograms_leave_out_the_untransformed_samples(client):
    d = client.post("/api/render", json={"yaml": "rotate: [10, 20]\np: 0.5", "n": 1, "size": 64}).json()
    applied = aa.sample({"rotate": [10, 20], "p": 0.5}, np.arange(4096), size=(64, 64)).params["applied"]
    assert d["hist"]["applied"] == {"fraction": applied.mean()}
    assert 10 <= d["hist"]["rotate"]["edges"][0] and d["hist"]["rotate"]["edges"][-1] <= 20  # no identity spike at 0
    assert sum(d["hist"]["rotate"]["counts"]) == applied.sum()


# ----------------------------------------------------------------------------- validation at the key


@pytest.mark.parametrize(
    "body, key, message",
    [
        ({"yaml": "rotate: [50, 10]"}, "rotate", r"^<page>:1: rotate: low > high in range \[50.0, 10.0\]$"),
        ({"yaml": "scale: 1\nrotate: [1, x]"}, "rotate[1]", r"^<page>:2: rotate\[1\]: expected a number, got str 'x'$"),
        ({"yaml": "rotat: 3"}, "rotat", r"^<page>:1: rotat: unknown key 'rotat' \(did you mean 'rotate'\?\)$"),
        ({"yaml": "rotate: [1, 2"}, None, r"^<page>:1: invalid YAML: "),
        (
            {"config": {"shear": {"x": [-10, "abc"]}}},
            "shear.x[1]",
            r"^<page>: shear.x\[1\]: expected a number, got str 'abc'$",
        ),
        (
            {"config": {"scale": {"dist": "normal", "mean": 1, "std": 0}}},
            "scale.std",
            r"^<page>: scale.std: std must be > 0, got 0.0$",
        ),
        (
            {"yaml": "extends: /etc/passwd"},
            "extends",
            r"^<page>: extends: not available on this page \(it would read another file\)",
        ),
        ({"config": {"extends": "../x.yaml"}}, "extends", r"^<page>: extends: not available on this page"),
    ],
)
def test_config_errors_name_their_key(client, body, key, message):
    r = client.post("/api/render", json=body)
    d = r.json()
    assert r.status_code == 200 and d["ok"] is False
    assert d["error"]["key"] == key
    assert re.search(message, d["error"]["message"]), d["error"]["message"]
    if "config" in body:  # the editor shows the controls' values even when they are wrong
        assert d["yaml"].startswith(next(iter(body["config"])))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("n", 0, r"^n: expected an integer in \[1, 64\], got 0$"),
        ("seed", "x", r"^seed: expected an integer in \[0, 9223372036854775807\], got 'x'$"),
        ("size", 1000, r"^size: expected one of 64, 96, 128, 160, 224, 320, 448, got 1000$"),
        ("border", "wrapp", r"^border: expected one of constant, edge, reflect, mirror, wrap, got 'wrapp'$"),
        ("boxes", [[1, 2, 3]], r"^boxes: each item must be a list of 4 finite numbers, got \[1, 2, 3\]$"),
        ("antialias", "yes", r"^antialias: expected true or false, got 'yes'$"),
    ],
)
def test_bad_grid_settings_are_refused_with_a_message(client, field, value, message):
    r = client.post("/api/render", json={"yaml": "rotate: 5", field: value})
    assert r.status_code == 400 and re.search(message, r.json()["error"]["message"])


def test_bad_requests_get_messages_and_the_server_keeps_running(client):
    r = client.post("/api/render", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = client.post(
        "/api/render", content=b"[" * 100_000 + b"]" * 100_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = client.post("/api/render", content=b'{"yaml": "rotate: 1"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "expected a JSON body" in r.json()["error"]["message"]
    r = client.post("/api/render", json={"yaml": "rotate: 1"}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "another origin" in r.json()["error"]["message"]
    r = client.get("/api/state", headers={"host": "evil.example"})
    assert r.status_code == 400  # DNS rebinding: only local host names are served
    r = client.post("/api/render", json={"yaml": "rotate: 1", "image": "file/9"})
    assert r.status_code == 404 and r.json()["error"]["message"] == "'file/9': no such image"
    assert client.post("/api/render", json={"yaml": "rotate: 1", "n": 1}).json()["ok"]


def test_any_host_name_only_when_serving_the_network():
    state = State(Sources.from_paths([]), aa.load_config("mild"))
    assert (
        TestClient(make_app(state, host="0.0.0.0"), base_url="http://192.0.2.7:8765").get("/api/state").status_code
        == 200
    )
    assert TestClient(make_app(state), base_url="http://192.0.2.7:8765").get("/api/state").status_code == 400
    assert TestClient(make_app(state), base_url="http://localhost:8765").get("/api/state").status_code == 200


# ----------------------------------------------------------------------------- images: roots, uploads, bombs


def test_listing_holds_the_folder_images_only(client):
    names = [i["name"] for i in client.get("/api/state").json()["images"]]
    assert names == ["pattern", "folder/0/a.png", "folder/0/sub/big.jpg"]  # no link.png (leaves the folder), no .txt


@pytest.mark.parametrize(
    "name, status, message",
    [
        ("folder/0/../secret.png", 403, "outside the folders this page was given"),
        ("folder/0/link.png", 403, "it leads outside the folder"),
        ("folder/0//etc/passwd", 403, "outside the folders this page was given"),
        ("folder/0/notes.txt", 403, "not an image file"),
        ("folder/1/a.png", 404, "no such image"),
        ("../secret.png", 404, "no such image"),
        ("upload/3", 404, "no such upload"),
    ],
)
def test_no_file_outside_the_roots_is_read(client, name, status, message):
    r = client.get("/api/image", params={"name": name, "size": 224})
    assert r.status_code == status and message in r.json()["error"]["message"]
    r = client.post("/api/render", json={"yaml": "rotate: 1", "image": name})
    assert r.status_code == status and message in r.json()["error"]["message"]


def test_folder_images_are_shrunk_to_the_size(client):
    r = client.get("/api/image", params={"name": "folder/0/sub/big.jpg", "size": 224})
    assert r.status_code == 200 and (r.headers["x-width"], r.headers["x-height"]) == ("224", "134")
    r = client.get("/api/image", params={"name": "folder/0/a.png", "size": 224})
    assert (r.headers["x-width"], r.headers["x-height"]) == ("60", "40")  # never enlarged


def test_upload_then_render_it(client):
    img = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    r = client.post(
        "/api/upload", content=png_bytes(img), headers={"content-type": "image/png", "x-filename": "my%20cat.png"}
    )
    d = r.json()
    assert r.status_code == 200 and d["name"] == "upload/1"
    assert {"name": "upload/1", "label": "my cat.png"} in d["images"]
    t = client.post("/api/render", json={"config": {}, "image": "upload/1", "n": 1}).json()
    assert np.array_equal(decode(t["tiles"][0]), decode(encode_jpeg(img)))


def test_oversized_upload_is_refused(client):
    r = client.post("/api/upload", content=b"\0" * (MAX_UPLOAD_BYTES + 1), headers={"content-type": "image/png"})
    assert r.status_code == 413
    assert (
        r.json()["error"]["message"]
        == f"request body of {MAX_UPLOAD_BYTES + 1} bytes refused: at most {MAX_UPLOAD_BYTES} bytes"
    )

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(MAX_UPLOAD_BYTES // (1 << 20) + 1):
            yield b"\0" * (1 << 20)

    r = client.post("/api/upload", content=chunks(), headers={"content-type": "image/png"})
    assert (
        r.status_code == 413
        and r.json()["error"]["message"] == f"request body refused: more than {MAX_UPLOAD_BYTES} bytes"
    )


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding(client):
    bomb = io.BytesIO()
    Image.new("1", (7000, 7000)).save(bomb, format="PNG")  # a few kB that would decode to 147 MB of RGB
    assert len(bomb.getvalue()) < 200_000
    r = client.post("/api/upload", content=bomb.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 413
    assert (
        r.json()["error"]["message"]
        == f"upload: 7000x7000 pixels, more than the {MAX_PIXELS} allowed (refused before decoding)"
    )
    r = client.post("/api/upload", content=_png_header_only(30000, 30000), headers={"content-type": "image/png"})
    assert r.status_code == 413 and r.json()["error"]["message"].startswith(
        "upload: refused as a decompression bomb (Image size (900000000 pixels) exceeds limit"
    )  # Pillow's own check, at open
    r = client.post("/api/upload", content=b"GIF89a" + b"\0" * 20, headers={"content-type": "image/gif"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("upload: ")
    r = client.post("/api/upload", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415


# ----------------------------------------------------------------------------- saving


def test_save_writes_yaml_that_loads_equal(client, roots):
    text = "# tuned\nrotate: [-20, 20]\nflip: {horizontal: 0.5}\n"
    r = client.post("/api/save", json={"path": "exp/tuned.yaml", "yaml": text})
    d = r.json()
    assert r.status_code == 200 and d["ok"], d
    path = roots / "saved" / "exp" / "tuned.yaml"
    assert path.read_text() == text and aa.load_config(path) == parse_text(text)
    assert f'RandomAffine("{path.resolve()}"' in d["snippet"]["python"]
    assert f"affine-aug preview {path.resolve()} IMAGE" in d["snippet"]["cli"]
    r = client.post("/api/save", json={"path": "exp/tuned.yaml", "yaml": "rotate: 3"})
    assert r.status_code == 409 and "exists: tick overwrite" in r.json()["error"]["message"]
    assert client.post("/api/save", json={"path": "exp/tuned.yaml", "yaml": "rotate: 3", "overwrite": True}).json()[
        "ok"
    ]
    assert aa.load_config(path) == aa.load_config({"rotate": 3})


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("../out.yaml", 403, "refused: it must stay inside"),
        ("/tmp/out.yaml", 403, "refused: it must stay inside"),
        ("escape/out.yaml", 403, "leads outside"),
        ("out.txt", 400, "must end in .yaml or .yml"),
        ("", 400, "expected a file name like my_aug.yaml"),
    ],
)
def test_save_refuses_paths_outside_the_save_folder(client, roots, path, status, message):
    (roots / "saved" / "escape").symlink_to(roots)
    r = client.post("/api/save", json={"path": path, "yaml": "rotate: 3"})
    assert r.status_code == status and message in r.json()["error"]["message"]
    assert not (roots / "out.yaml").exists()


def test_save_refuses_a_bad_config_at_its_key(client, roots):
    r = client.post("/api/save", json={"path": "bad.yaml", "yaml": "rotate: [5, 1]"})
    assert r.status_code == 400 and r.json()["error"]["key"] == "rotate"
    assert not (roots / "saved" / "bad.yaml").exists()


def test_save_is_off_without_a_save_folder(roots):
    c = TestClient(make_app(State(Sources.from_paths([]), aa.load_config("mild"))), base_url="http://localhost")
    r = c.post("/api/save", json={"path": "a.yaml", "yaml": "rotate: 3"})
    assert r.status_code == 403 and "start the page with --save-dir DIR" in r.json()["error"]["message"]


# ----------------------------------------------------------------------------- the running server


def _start(*args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "affine_aug.cli", "tune", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    m = re.search(r"http://(\S+):(\d+)/", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"no URL printed: {line!r} {proc.stderr.read()}")
    return proc, m.group(1), int(m.group(2))


@pytest.fixture
def server():
    proc, host, port = _start()
    yield host, port
    proc.terminate()
    proc.wait(timeout=10)


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (Linux /proc/net/tcp)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.append(addr)
    return found


def test_binds_localhost_by_default(server):
    host, port = server
    assert host == "127.0.0.1"
    from affine_aug.cli import build_parser

    assert build_parser().parse_args(["tune"]).host == "127.0.0.1"
    addrs = _listening_addresses(port)
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the bound address from")
    assert addrs == ["0100007F"]  # 127.0.0.1, not 00000000 (0.0.0.0)


def test_concurrent_requests_get_their_own_results(server):
    import httpx

    host, port = server
    results, errors = {}, []

    def one(angle):
        try:
            with httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as c:
                r = c.post("/api/render", json={"config": {"rotate": angle}, "n": 2, "size": 64, "key_start": angle})
                results[angle] = r.json()
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(a,)) for a in range(0, 80, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for angle, d in results.items():
        assert d["ok"] and d["params"]["rotate"] == [angle, angle] and d["keys"] == [angle, angle + 1]
        assert d["config"]["rotate"] == angle
    assert len({d["tiles"][0] for d in results.values()}) == len(results)


def test_cli_errors_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "affine_aug.cli", "tune", str(tmp_path / "missing")],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "missing: cannot use it" in r.stderr
    code = "import sys; sys.modules['uvicorn'] = None; from affine_aug.cli import main; sys.exit(main(['tune']))"
    r = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "pip install affine_aug[tune]" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "affine_aug.cli", "tune", "--port", str(busy)],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{busy}" in r.stderr
