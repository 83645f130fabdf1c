"""The ``affine-aug`` command line.

    affine-aug demo [--out DIR]
    affine-aug preview CONFIG [IMAGE ...] [--n 16] --out grid.png [--box x1,y1,x2,y2] [--point x,y]
    affine-aug generate --config C --input DIR --output DIR --copies K [--size H W] [--format folder|npz] [--seed S]
    affine-aug validate CONFIG
    affine-aug gtsrb --root DIR --out OUT [...]        (the GTSRB preprocessing job)

CONFIG is a YAML path or a preset name (gtsrb, identity, mild, strong, stn_rts). Every
command that takes a config accepts ``--set key.path=value`` (repeatable).
Exit codes: 0 done, 2 bad usage or config, 1 bad data. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .config import ConfigError, load_config
from .gtsrb import DataError, make_synthetic, preprocess
from .gtsrb.synthetic import _SYNTHETIC_MARKER
from .jobs import FORMATS, JobDataError, JobError, plan_generate, run_job, start_ray, stop_ray
from .matrix import transform_boxes, transform_points
from .pipeline import MAX_PIXELS, BadImage, _read_image, save_image, warp_ragged
from .sampling import _PARAMS, sample

__all__ = ["main"]


class UsageError(Exception):
    """Bad arguments (exit code 2)."""


def _config(args):
    return load_config(args.config, overrides=args.set)


# ----------------------------------------------------------------------------- pictures


def pattern_image(size: int = 96) -> np.ndarray:
    """A built-in RGB test card: grid, coloured quadrants, an arrow pointing up and right."""
    y, x = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = np.where(x < size // 2, 220, 40)
    img[..., 1] = np.where(y < size // 2, 200, 60)
    img[..., 2] = 120
    img[(x % 12 == 0) | (y % 12 == 0)] = 255
    c = size // 2
    shaft = (np.abs(x - c) <= 2) & (y > c - size // 3) & (y < c + size // 3)
    head = (y >= c - size // 3) & (y <= c - size // 3 + 10) & (np.abs(x - c) <= (y - (c - size // 3)))
    bar = (np.abs(y - c) <= 2) & (x > c) & (x < c + size // 3)
    img[shaft | head | bar] = (0, 0, 0)
    return img


def _draw(img: np.ndarray, boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for x1, y1, x2, y2 in boxes:
        d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=(255, 0, 255))
    for px, py in points:
        d.ellipse([px - 2, py - 2, px + 2, py + 2], fill=(0, 255, 255))
    return np.asarray(im)


def grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized images into one picture with a white gutter."""
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = im
    return out


def _parse_numbers(text: str, n: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise UsageError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


# ----------------------------------------------------------------------------- commands


def cmd_preview(args) -> int:
    cfg = _config(args)
    loaded = [_read_image(p) for p in args.images]
    for p, (_, deep) in zip(args.images, loaded):
        if deep:  # the preview is an 8-bit RGB picture: 16-bit sources are scaled, with rounding
            print(f"{p}: 16-bit source scaled to 8 bits (rounded, not clipped) for the preview", file=sys.stderr)
    images = [img for img, _ in loaded] or [pattern_image()]
    boxes = np.array([_parse_numbers(b, 4, "--box") for b in args.box]).reshape(-1, 4)
    points = np.array([_parse_numbers(p, 2, "--point") for p in args.point]).reshape(-1, 2)
    tiles = []
    for k, img in enumerate(images):
        h, w = img.shape[:2]
        keys = np.arange(args.n, dtype=np.uint64) + np.uint64(k * args.n)
        m = sample(cfg, keys, size=(h, w), seed=args.seed).matrices
        warped = warp_ragged([img] * args.n, m, (h, w), border=args.border, antialias=False)
        tiles.append(_draw(img, boxes, points))
        for i in range(args.n):
            tiles.append(_draw(warped[i], transform_boxes(boxes, m[i]), transform_points(points, m[i])))
    size = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    tiles = [
        np.pad(t, ((0, size[0] - t.shape[0]), (0, size[1] - t.shape[1]), (0, 0)), constant_values=255) for t in tiles
    ]
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the path of the PNG to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid(tiles, cols=args.n + 1 if len(images) > 1 else min(args.n + 1, 9)), out)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write ({(e.strerror or str(e)).lower()})") from None
    print(f"wrote {out} (first tile of each row: the input)")
    return 0


def cmd_validate(args) -> int:
    cfg = _config(args)
    print(f"# {args.config} resolved (extends and --set applied)")
    print(cfg.to_yaml(), end="")
    b = sample(cfg, np.arange(10_000), size=(args.size[0], args.size[1]), seed=args.seed)
    print(f"\n# 10,000 draws for a {args.size[0]}x{args.size[1]} image (translate and center in pixels)")
    print(f"{'param':12s} {'mean':>10s} {'std':>10s} {'min':>10s} {'p5':>10s} {'p50':>10s} {'p95':>10s} {'max':>10s}")
    for name in _PARAMS:
        v = b.params[name].astype(np.float64)
        q = np.percentile(v, [5, 50, 95])
        print(
            f"{name:12s} {v.mean():10.4g} {v.std():10.4g} {v.min():10.4g} "
            f"{q[0]:10.4g} {q[1]:10.4g} {q[2]:10.4g} {v.max():10.4g}"
        )
    return 0


def _kernel_note(quiet: bool) -> None:
    from .kernel import _MISSING, available

    if not quiet and not available():
        print(f"warning: {_MISSING}; using the numpy path (several times slower)", file=sys.stderr)


def cmd_generate(args) -> int:
    """Offline augmentation of an ImageFolder tree, on the job engine (affine_aug.jobs)."""
    _kernel_note(args.quiet)
    if args.engine == "ray":
        start_ray(args.address, args.num_cpus, warm=True)  # Ray's workers start while the plan is made
    job = plan_generate(
        args.input,
        args.output,
        config=args.config,
        copies=args.copies,
        size=args.size,
        fmt=args.format,
        image_format=args.image_format,
        quality=args.quality,
        seed=args.seed,
        border=args.border,
        shard_size=args.shard_size,
        skip_bad=args.skip_bad,
        overrides=args.set,
        png_level=args.png_level,
        full_decode=args.full_decode,
        max_pixels=args.max_pixels,
    )
    if job.ignored and not args.quiet:
        counts = ", ".join(f"{n} {ext}" for ext, n in sorted(job.ignored.items()))
        print(f"ignored files with unsupported extensions: {counts}", file=sys.stderr)
    if job.links and not args.quiet:
        print(
            f"{len(job.links)} symbolic links not followed (outside the input, or loops), listed in the manifest, "
            f"first {job.links[0]}",
            file=sys.stderr,
        )
    m = run_job(
        job,
        executor=args.engine,
        workers=args.workers,
        address=args.address,
        num_cpus=args.num_cpus,
        overwrite=args.overwrite,
        progress=_bar(args.quiet, "generate"),
    )
    done = m["resumed_shards"]
    note = f" ({done} of {len(m['shards'])} shards were already complete and verified)" if done else ""
    skipped = f"; {m['skipped_count']} bad files skipped (listed in the manifest)" if m["skipped_count"] else ""
    print(f"wrote {m['rows']} images in {len(m['shards'])} {args.format} shards to {args.output}{note}{skipped}")
    return 0


def _bar(quiet: bool, desc: str):
    if quiet:
        return None
    from tqdm import tqdm

    return lambda **kw: tqdm(desc=desc, unit="img", leave=False, **kw)


def _preprocess_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="folder holding a GTSRB layout (official, torchvision or Kaggle)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", default="gtsrb", help="config path or preset name (default: gtsrb)")
    p.add_argument("--size", type=int, default=32, help="output side in pixels (default 32)")
    p.add_argument("--copies", type=int, default=0, help="augmented copies per training image, added to the originals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-tracks", type=int, default=1, help="whole tracks per class held out for validation")
    p.add_argument("--balance", action="store_true", help="augment smaller classes up to the largest")
    p.add_argument("--format", choices=("npz", "folder"), default="npz")
    p.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images / bad CSV rows, listing them in the manifest"
    )
    p.add_argument("--test-csv", help="labelled GT-final_test.csv when it is not next to the test images")
    p.add_argument("--border", choices=("edge", "constant"), default="edge")
    p.add_argument("--shard-size", type=int, default=256, help="source images per shard (default 256)")
    _engine_args(p)


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite", action="store_true", help="replace the output of a different job (only its own files)"
    )
    p.add_argument("--workers", type=int, default=1, help="local processes (results do not depend on it)")
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where to compute (results are identical)"
    )
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local Ray instance")


def cmd_gtsrb(args) -> int:
    _kernel_note(args.quiet)
    m = preprocess(
        args.root,
        args.out,
        config=args.config,
        size=args.size,
        copies=args.copies,
        seed=args.seed,
        val_tracks=args.val_tracks,
        balance=args.balance,
        fmt=args.format,
        skip_bad=args.skip_bad,
        test_csv=args.test_csv,
        border=args.border,
        overrides=args.set,
        shard_size=args.shard_size,
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        num_cpus=args.num_cpus,
        overwrite=args.overwrite,
        progress=_bar(args.quiet, "gtsrb"),
    )
    counts = ", ".join(f"{k} {v['total']}" for k, v in m["counts"].items())
    done = f" ({m['resumed_shards']} shards already complete and verified)" if m["resumed_shards"] else ""
    print(f"wrote {args.out}: {counts} images; {m['skipped_count']} skipped; {m['timings']['total_s']:.1f} s{done}")
    return 0


PREVIEWS_RECORD = "affine_aug_previews.json"  # the demo's list of the previews it wrote


def _check_previews(previews: Path) -> None:
    """Refuse to replace a preview file that an earlier demo did not write."""
    if not previews.exists():
        return
    try:
        ours = set(json.loads((previews / PREVIEWS_RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        ours = set()
    for name in sorted(p.name for p in previews.glob("*.png")):
        if (name == "overview.png" or name.startswith("class_")) and name not in ours:
            raise UsageError(
                f"{previews / name} exists and this demo did not write it; use another --out, or move it away"
            )


def _save_preview(image, previews: Path, written: list) -> None:
    """Record the file (before writing it, so that a killed run's files are known), then write it."""
    from .files import write_atomic

    try:
        ours = set(json.loads((previews / PREVIEWS_RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        ours = set()
    previews.mkdir(parents=True, exist_ok=True)
    write_atomic(previews / PREVIEWS_RECORD, json.dumps(sorted(ours | set(written))))
    save_image(image, previews / written[-1])


def cmd_demo(args) -> int:
    out = Path(args.out)
    data, pre, previews = out / "synthetic_gtsrb", out / "gtsrb32", out / "previews"
    t = time.perf_counter()
    marker = data / _SYNTHETIC_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("seed") == args.seed:
        n = json.loads(marker.read_text())
        print(f"1/3 synthetic GTSRB already in {data} ({n['train']} training, {n['test']} test images): reused")
    else:
        if data.exists() and any(data.iterdir()):
            raise UsageError(
                f"{data} exists and is not this demo's synthetic data (seed {args.seed}); "
                "use another --out, or remove it yourself"
            )
        n = make_synthetic(data, tracks_per_class=3, frames=10, test_per_class=5, seed=args.seed)
        print(f"1/3 synthetic GTSRB (official layout): {n['train']} training, {n['test']} test images in {data}")
    _kernel_note(args.quiet)
    _check_previews(previews)
    m = preprocess(
        data,
        pre,
        config="gtsrb",
        copies=5,
        seed=args.seed,
        progress=_bar(args.quiet, "gtsrb"),
        overrides=args.set,
        overwrite=True,
    )  # replaces only an earlier demo's gtsrb32/ (a folder holding no job is refused)
    counts = ", ".join(f"{k} {v['total']}" for k, v in m["counts"].items())
    print(f"2/3 preprocessed with configs/gtsrb.yaml, --copies 5: {counts} images in {pre}")
    d = np.load(pre / "train.npz")
    x, y = d["x"], d["y"]
    rows, written = [], []
    for label in range(0, int(y.max()) + 1):
        idx = np.flatnonzero(y == label)
        if len(idx) == 0:
            continue
        first = idx[:6]  # one original followed by its 5 augmented copies
        tiles = [np.kron(x[i], np.ones((3, 3, 1), np.uint8)) for i in first]
        written.append(f"class_{label:02d}.png")
        _save_preview(grid(tiles, cols=len(tiles)), previews, written)
        if label % 4 == 0:
            rows.append(tiles)
    written.append("overview.png")
    _save_preview(grid([t for r in rows for t in r], cols=6), previews, written)
    print(
        "3/3 previews (original, then 5 augmented copies): "
        f"{previews}/class_NN.png, overview {previews / 'overview.png'}"
    )
    print(f"manifest: {pre / 'manifest.json'}; done in {time.perf_counter() - t:.1f} s")
    return 0


# ----------------------------------------------------------------------------- main


def _add_demo(sub, parents) -> None:
    d = sub.add_parser("demo", parents=parents, help="synthetic GTSRB → preprocess → previews")
    d.add_argument("--out", default="affine_aug_demo", help="output folder (default ./affine_aug_demo)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)


def _add_preview(sub, parents) -> None:
    v = sub.add_parser("preview", parents=parents, help="grid of samples drawn from a config")
    v.add_argument("config")
    v.add_argument("images", nargs="*", help="images (default: a built-in test pattern)")
    v.add_argument("--n", type=int, default=16, help="samples per image")
    v.add_argument("--out", required=True, help="PNG to write")
    v.add_argument("--seed", type=int)
    v.add_argument(
        "--box", action="append", default=[], metavar="X1,Y1,X2,Y2", help="a box to draw, transformed (repeatable)"
    )
    v.add_argument(
        "--point", action="append", default=[], metavar="X,Y", help="a keypoint to draw, transformed (repeatable)"
    )
    v.add_argument("--border", choices=("edge", "constant"), default="constant")
    v.set_defaults(func=cmd_preview)


def _add_generate(sub, parents) -> None:
    g = sub.add_parser("generate", parents=parents, help="offline augmentation of an ImageFolder tree")
    g.add_argument("--config", required=True)
    g.add_argument("--input", required=True, help="ImageFolder tree: one subfolder per class")
    g.add_argument("--output", required=True, help="new or empty folder (or the output of the same job, to resume)")
    g.add_argument("--copies", type=int, required=True)
    g.add_argument("--size", type=int, nargs=2, metavar=("H", "W"))
    g.add_argument("--format", choices=FORMATS, default="folder")
    _encoding_args(g)
    g.add_argument("--seed", type=int)
    g.add_argument("--border", choices=("edge", "constant"), default="edge")
    g.add_argument("--shard-size", type=int, default=64, help="source images per shard (default 64)")
    g.add_argument("--skip-bad", action="store_true", help="skip unreadable images, listing them in the manifest")
    _engine_args(g)
    g.set_defaults(func=cmd_generate)


def _encoding_args(g: argparse.ArgumentParser) -> None:
    """How ``generate`` encodes and decodes images."""
    g.add_argument(
        "--image-format", choices=("png", "jpg", "webp"), default="png", help="encoding of each image (not npz)"
    )
    g.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality")
    g.add_argument(
        "--png-level",
        type=int,
        default=1,
        metavar="0-9",
        help="PNG compression: 0 stores, 1 (default) is fastest, 9 smallest (see docs)",
    )
    g.add_argument(
        "--full-decode",
        action="store_true",
        help="decode every source at full size (default with --size: shrink large sources once while reading)",
    )
    g.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"refuse sources of more than N pixels before decoding them (default and most {MAX_PIXELS:,})",
    )


def _add_validate(sub, parents) -> None:
    c = sub.add_parser("validate", parents=parents, help="check a config and summarise its draws")
    c.add_argument("config")
    c.add_argument("--size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    c.add_argument("--seed", type=int)
    c.set_defaults(func=cmd_validate)


def _add_gtsrb(sub, parents) -> None:
    t = sub.add_parser("gtsrb", parents=parents, help="preprocess GTSRB (ROI crop + resize + augmentation)")
    _preprocess_args(t)
    t.set_defaults(func=cmd_gtsrb)


def _add_tune(sub, parents) -> None:
    from .tune.command import (
        add_arguments as tune_arguments,
        run as cmd_tune,
    )  # the page's logic lives in affine_aug.tune

    u = sub.add_parser("tune", parents=parents, help="live tuning page for a config (pip install affine_aug[tune])")
    tune_arguments(u)
    u.set_defaults(func=cmd_tune)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    with_config = argparse.ArgumentParser(add_help=False)
    with_config.add_argument(
        "--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value (repeatable)"
    )

    p = argparse.ArgumentParser(prog="affine-aug", description="Keyed random affine augmentation from YAML configs.")
    p.add_argument("--version", action="version", version=f"affine_aug {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_preview, _add_generate, _add_validate, _add_gtsrb):
        add(sub, [common, with_config])
    _add_tune(sub, [common])
    return p


def _interrupted(signum, frame) -> None:
    """Ctrl-C of the command: one line and exit 130, at once, whatever runs (Ray's shutdown
    included). Local workers die with the driver; finished shards are kept, temporary
    files are removed by the next run."""
    os.write(_STDERR_FD, _INTERRUPTED[0])
    os._exit(130)


_INTERRUPTED = [b"\naffine-aug: interrupted; no output was marked complete (rerun to resume)\n"]


def _lost(message: str) -> None:
    os.write(_STDERR_FD, f"affine-aug: error: {message}\n".encode(errors="replace"))
    os._exit(2)


_STDERR_FD = 2  # the terminal's stderr (Ray's native log lines go elsewhere, see _ray_stderr)


class _ray_stderr:
    """For an --engine ray command: Python's ``sys.stderr`` (messages, progress bars) stays
    on the terminal, while file descriptor 2, where Ray's C++ core logs, goes to a scratch file."""

    def __enter__(self):
        import tempfile

        global _STDERR_FD
        sys.stderr.flush()
        self.saved_fd, self.saved = os.dup(2), sys.stderr
        self.scratch = tempfile.TemporaryFile()
        os.dup2(self.scratch.fileno(), 2)
        sys.stderr = open(self.saved_fd, "w", buffering=1, closefd=False, errors="backslashreplace")
        _STDERR_FD = self.saved_fd
        return self

    def __exit__(self, *exc):
        global _STDERR_FD
        sys.stderr.flush()
        sys.stderr = self.saved
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        self.scratch.close()
        _STDERR_FD = 2
        return False


def main(argv=None) -> int:
    import contextlib
    import signal

    from .jobs.ray_executor import _ClusterWatch

    # the command (not a caller's Python) keeps this handler to its very end, Ray's shutdown included
    if argv is None:
        signal.signal(signal.SIGINT, _interrupted)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "n", 1) is not None and getattr(args, "n", 1) < 1:
        parser.error("--n must be >= 1")
    if args.command not in ("generate", "gtsrb", "demo"):
        _INTERRUPTED[0] = b"\naffine-aug: interrupted\n"
    on_ray = getattr(args, "engine", None) == "ray"
    _ClusterWatch.HARD_EXIT = _lost if argv is None else None
    with _ray_stderr() if on_ray and argv is None else contextlib.nullcontext():
        try:
            code = _run(args)
            if code == 0:
                _INTERRUPTED[0] = b"\naffine-aug: interrupted after the command had finished (its output is complete)\n"
        finally:
            try:
                stop_ray()
            finally:
                _ClusterWatch.HARD_EXIT = None
    if argv is None and args.command in ("generate", "gtsrb", "demo"):
        # a job command ends here, its files written and Ray disconnected: Python's own
        # finalization would reset the Ctrl-C handler while it runs the exit hooks
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(args) -> int:
    try:
        return args.func(args)
    except (ConfigError, UsageError, JobError) as e:
        if args.debug:
            raise
        print(f"affine-aug: error: {e}", file=sys.stderr)
        return 2
    except (DataError, BadImage, JobDataError) as e:
        if args.debug:
            raise
        print(f"affine-aug: bad data: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        if args.debug:
            raise
        print(f"affine-aug: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("affine-aug: interrupted; no output was marked complete (rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
