"""The tuning page's server: Starlette routes over ``configs``, ``sources`` and ``render``.

Every handler reads a bounded body, does its work in a worker thread (requests share
nothing but the read-only sources and a cache of working images), and answers JSON; a bad
request gets a message for the page, never a traceback, and the server keeps running.
Requests must come to a local host name (no DNS rebinding) and, for POSTs, from the page
itself (same origin, JSON or image content types only: a foreign page cannot post).
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import AffineConfig, ConfigError, load_config, preset_dir
from ..files import write_atomic
from .._checks import BORDERS, INTERPOLATIONS
from ..sampling import _PARAMS
from .configs import compact, error_location, parse_mapping, parse_text, to_yaml
from .render import SIZES, Request, render
from .sources import MAX_UPLOAD_BYTES, BadInput, Sources, shrink

__all__ = ["State", "make_app"]

STATIC = Path(__file__).resolve().parent / "static"
MAX_JSON_BYTES = 256 << 10
MAX_CACHED = 16
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class State:
    """What the server was started with: the sources, the first config, the save folder."""

    sources: Sources
    config: AffineConfig
    save_dir: Path | None = None
    _cache: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def working(self, name: str, size: int):
        """The named image shrunk to ``size`` (cached: the grid is redrawn on every change)."""
        if not isinstance(name, str):
            raise BadInput(f"image: expected a name, got {name!r}")
        with self._lock:
            hit = self._cache.get((name, size))
            if hit is not None:
                self._cache.move_to_end((name, size))
                return hit
        img = shrink(self.sources.read(name), size)
        img.setflags(write=False)
        with self._lock:
            self._cache[(name, size)] = img
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return img


# ----------------------------------------------------------------------------- request plumbing


async def _body(request: HTTPRequest, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise BadInput(f"request body of {length} bytes refused: at most {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput(f"request body refused: more than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _same_origin(request: HTTPRequest) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise BadInput(f"request from another origin ({origin}) refused", 403)


async def _json(request: HTTPRequest) -> dict:
    _same_origin(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadInput("expected a JSON body (Content-Type: application/json)", 415)
    try:
        data = json.loads(await _body(request, MAX_JSON_BYTES))
    except (ValueError, RecursionError) as e:
        raise BadInput(f"request body is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadInput("request body must be a JSON object")
    return data


def _guarded(handler):
    """Answer a handler's BadInput / ConfigError / anything else as JSON for the page."""

    async def endpoint(request: HTTPRequest):
        try:
            response = await handler(request)
        except BadInput as e:
            response = JSONResponse({"ok": False, "error": {"message": str(e), "key": None}}, status_code=e.status)
        except ConfigError as e:
            response = JSONResponse({"ok": False, "error": error_location(e)}, status_code=400)
        except Exception as e:  # noqa: BLE001 -- the server keeps running; the page shows what went wrong
            response = JSONResponse(
                {"ok": False, "error": {"message": f"internal error: {type(e).__name__}: {e}", "key": None}},
                status_code=500,
            )
        response.headers.update(HEADERS)
        return response

    return endpoint


# ----------------------------------------------------------------------------- work


def _config_of(body: dict) -> tuple[AffineConfig | None, str | None, dict | None]:
    """``(config, YAML for the editor or None, error or None)`` from ``yaml`` text or a ``config`` mapping."""
    if "yaml" in body:
        try:
            return parse_text(body["yaml"]), None, None
        except ConfigError as e:
            return None, None, error_location(e)
    mapping = body.get("config", {})
    try:
        cfg = parse_mapping(mapping)
        return cfg, to_yaml(compact(cfg)), None
    except ConfigError as e:
        return None, to_yaml(mapping) if isinstance(mapping, dict) else None, error_location(e)


def snippets(path: str, req: Request) -> dict:
    opts = f'seed={req.seed}, border="{req.border}", interpolation="{req.interpolation}", antialias={req.antialias}'
    py = (
        f'from affine_aug.torch import RandomAffine\n\nt = RandomAffine("{path}", {opts})\n\n'
        f"# numpy: images (N, H, W, C), keys (N,)\nimport affine_aug as aa\n"
        f'cfg = aa.load_config("{path}")\n'
        f"out = aa.warp_affine(images, aa.sample(cfg, keys, size=images.shape[1:3], seed={req.seed}).matrices,\n"
        f'                     border="{req.border}", interpolation="{req.interpolation}", antialias={req.antialias})'
    )
    border = req.border if req.border in ("edge", "constant") else "edge"
    cli = (
        f"affine-aug validate {path}\naffine-aug preview {path} IMAGE --n {req.n} --seed {req.seed} "
        f"--border {border} --out grid.png"
    )
    return {"python": py, "cli": cli}


def do_render(state: State, body: dict) -> dict:
    cfg, text, error = _config_of(body)
    if error is not None:
        return {"ok": False, "error": error, "yaml": text}
    req = Request.from_json(body)
    img = state.working(body.get("image", "pattern"), req.size)
    out = render(cfg, img, req)
    out.update(ok=True, yaml=text, config=cfg.to_dict(), snippet=snippets(body.get("path") or "my_aug.yaml", req))
    return out


def _save_path(state: State, rel) -> Path:
    if state.save_dir is None:
        raise BadInput("saving on the server is off: start the page with --save-dir DIR (or use download)", 403)
    if not isinstance(rel, str) or not rel.strip() or "\0" in rel or "\\" in rel:
        raise BadInput(f"save path: expected a file name like my_aug.yaml, got {rel!r}")
    p = Path(rel.strip())
    if p.is_absolute() or ".." in p.parts:
        raise BadInput(f"save path {rel!r} refused: it must stay inside {state.save_dir}", 403)
    if p.suffix not in (".yaml", ".yml"):
        raise BadInput(f"save path {rel!r}: must end in .yaml or .yml")
    root = state.save_dir.resolve()
    target = (root / p).resolve()
    try:
        target.relative_to(root)
    except ValueError:
        raise BadInput(f"save path {rel!r} refused: it leads outside {root} (a symlink?)", 403) from None
    return target


def do_save(state: State, body: dict) -> dict:
    target = _save_path(state, body.get("path"))
    text = body.get("yaml")
    cfg = parse_text(text)
    if target.exists() and body.get("overwrite") is not True:
        raise BadInput(f"{target} exists: tick overwrite to replace it", 409)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text if text.endswith("\n") else text + "\n")
    if load_config(target) != cfg:  # the file is exactly the text just validated
        raise BadInput(f"{target}: written, but it loads back to another config")
    rel = target.relative_to(state.save_dir.resolve()).as_posix()
    return {"ok": True, "path": str(target), "relative": rel, "snippet": snippets(str(target), Request.from_json(body))}


def page_state(state: State) -> dict:
    return {
        "images": state.sources.names(),
        "yaml": to_yaml(compact(state.config)),
        "config": state.config.to_dict(),
        "save_dir": None if state.save_dir is None else str(state.save_dir),
        "presets": sorted(p.stem for p in preset_dir().glob("*.yaml")),
        "sizes": list(SIZES),
        "borders": list(BORDERS),
        "interpolations": list(INTERPOLATIONS),
        "params": list(_PARAMS),
        "max_upload_bytes": MAX_UPLOAD_BYTES,
    }


def preset_yaml(name) -> dict:
    names = sorted(p.stem for p in preset_dir().glob("*.yaml"))
    if name not in names:
        raise BadInput(f"no preset {name!r} (presets: {', '.join(names)})", 404)
    return {"ok": True, "yaml": to_yaml(compact(load_config(name)))}


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ----------------------------------------------------------------------------- app


def make_app(state: State, host: str = "127.0.0.1") -> Starlette:
    """The ASGI app. Host names other than the local ones are refused unless ``host`` is
    a wildcard (then the user chose to serve the network)."""

    async def index(request):
        return FileResponse(STATIC / "index.html")

    async def api_state(request):
        return JSONResponse(await run_in_threadpool(page_state, state))

    async def api_preset(request):
        return JSONResponse(await run_in_threadpool(preset_yaml, request.query_params.get("name")))

    async def api_image(request):
        try:
            size = int(request.query_params.get("size", "224"))
        except ValueError:
            size = -1
        if size not in SIZES:
            raise BadInput(f"size: expected one of {', '.join(map(str, SIZES))}")
        img = await run_in_threadpool(state.working, request.query_params.get("name", ""), size)
        data = await run_in_threadpool(_jpeg, img)
        return Response(
            data, media_type="image/jpeg", headers={"X-Width": str(img.shape[1]), "X-Height": str(img.shape[0])}
        )

    async def api_render(request):
        body = await _json(request)
        return JSONResponse(await run_in_threadpool(do_render, state, body))

    async def api_save(request):
        body = await _json(request)
        return JSONResponse(await run_in_threadpool(do_save, state, body))

    async def api_upload(request):
        _same_origin(request)
        kind = request.headers.get("content-type", "")
        if not (kind.startswith("image/") or kind == "application/octet-stream"):
            raise BadInput("an upload is the image file itself (Content-Type image/...)", 415)
        data = await _body(request, MAX_UPLOAD_BYTES)
        label = unquote(request.headers.get("x-filename", "upload"))
        name = await run_in_threadpool(state.sources.add_upload, label, data)
        return JSONResponse({"ok": True, "name": name, "images": state.sources.names()})

    routes = [
        Route("/", _guarded(index)),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/state", _guarded(api_state)),
        Route("/api/preset", _guarded(api_preset)),
        Route("/api/image", _guarded(api_image)),
        Route("/api/render", _guarded(api_render), methods=["POST"]),
        Route("/api/save", _guarded(api_save), methods=["POST"]),
        Route("/api/upload", _guarded(api_upload), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    wildcard = host in ("0.0.0.0", "::", "")
    allowed = ["*"] if wildcard else sorted(set(LOCAL_HOSTS + [host]))
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)])
