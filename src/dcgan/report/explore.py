"""`dcgan explore RUN`: the latent space of a run in the browser, served by the standard library.

The page (one HTML file with its script inline) asks the server for images; every image is G run on demand
from latents that the request names by seeds — never by a path — so the server reads only the run it was
given and the vectors it saved itself (RUN/vectors/NAME.npy, NAME of letters, digits, '-' and '_').

    GET  /                          the page
    GET  /api/info                  the model, the saved vectors (JSON)
    GET  /api/seeds?seeds=0-47      the seeds that text names, as every command parses them (JSON strings:
                                    seeds go to 2^63 − 1, JavaScript's numbers to 2^53)
    GET  /api/KIND.png | .npy       an image grid, or the latents behind it, for KIND in:
         sample        seeds=3,17            one image per seed
         interpolate   a=SEEDS b=SEEDS t=0.4 mode=auto|lerp|slerp   (A and B: the mean z of their seeds)
         arithmetic    a= b= c= noise=0.25 seed=0                   the paper's 3×3 grid, Y = A − B + C
         walk          seeds= vector=NAME amount=1.5                z + amount · vector
    POST /api/vector                from=SEEDS to=SEEDS name=NAME: saves mean(to) − mean(from)
    GET  /api/vector.npy?name=NAME  a saved vector

Each image response carries the `dcgan` command that makes the same picture (header X-Dcgan-Command). A bad
request is a 4xx with a one-line JSON message; G runs one request at a time (a lock), which on 2 CPU cores
keeps a slider interactive at 64² (docs/PERFORMANCE.md has the latency).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import math
import re
import shlex
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dcgan.artifacts import load_generator
from dcgan.errors import DcganError, printable
from dcgan.fileio import atomic_path
from dcgan.images import make_grid
from dcgan.models import Generator
from dcgan.report.latent import images
from dcgan.sampling import (
    INTERP_MODES,
    arithmetic_latents,
    direction,
    interpolation_mode,
    lerp,
    parse_seeds,
    slerp,
    z_for_seeds,
)

MAX_SEEDS = 256  # per request
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class View:
    """What one image request shows: latents → a grid of `ncols`, the command that makes it, and the latents
    its .npy download holds (by default the same)."""

    z: torch.Tensor
    ncols: int
    command: str
    latents: torch.Tensor | None = None


class BadRequest(DcganError):
    """A request the page (or a hand-written URL) got wrong: answered 400 with the message."""


class Explorer:
    """The run's generator and what the page may ask of it; `handle` maps a request to a response."""

    def __init__(self, run: str | Path, g: Generator | None = None) -> None:
        """`run` is a run folder, a checkpoint or a generator file; `g` its generator if loaded already (on
        the device it should run on), else it is loaded onto the CPU."""
        self.run = Path(run)
        self.g: Generator = g if g is not None else load_generator(self.run)
        self.vectors = (self.run if self.run.is_dir() else self.run.parent) / "vectors"
        self.render = Batcher(self.g)
        self.saving = threading.Lock()
        self.kinds: dict[str, Callable[[dict[str, str]], View]] = {
            "sample": self._sample,
            "interpolate": self._interpolate,
            "arithmetic": self._arithmetic,
            "walk": self._walk,
        }

    # ------------------------------------------------------------ requests

    def handle(self, method: str, path: str, body: bytes = b"") -> tuple[int, str, bytes, dict[str, str]]:
        """(status, content type, body, extra headers) for one request."""
        url = urllib.parse.urlsplit(path)
        try:
            params = _params(url.query if method == "GET" else body.decode("utf-8", errors="replace"))
            if method == "GET" and url.path == "/":
                return 200, "text/html; charset=utf-8", PAGE.encode(), {}
            if method == "GET" and url.path == "/api/info":
                return 200, "application/json", json.dumps(self.info()).encode(), {}
            if method == "GET" and url.path == "/api/seeds":
                return (
                    200,
                    "application/json",
                    json.dumps({"seeds": [str(s) for s in self._seeds(params, "seeds")]}).encode(),
                    {},
                )
            if method == "POST" and url.path == "/api/vector":
                return 200, "application/json", json.dumps(self.save_vector(params)).encode(), {}
            if method == "GET" and url.path == "/api/vector.npy":
                buf = io.BytesIO()
                np.save(buf, self._vector(_get(params, "name")).numpy())
                return 200, "application/octet-stream", buf.getvalue(), {}
            m = re.fullmatch(r"/api/([a-z]+)\.(png|npy)", url.path)
            if method == "GET" and m and m.group(1) in self.kinds:
                view = self.kinds[m.group(1)](params)
                headers = {"X-Dcgan-Command": view.command}
                if m.group(2) == "npy":
                    buf = io.BytesIO()
                    np.save(buf, (view.z if view.latents is None else view.latents).numpy())
                    return 200, "application/octet-stream", buf.getvalue(), headers
                return 200, "image/png", self.png(view.z, view.ncols), headers
            if url.path in ("/", "/api/info", "/api/seeds", "/api/vector", "/api/vector.npy") or (
                m and m.group(1) in self.kinds
            ):
                return 405, *_error(f"{url.path} does not take {method}")
            return 404, *_error(f"no such page: {url.path}")
        except DcganError as e:  # BadRequest, and the library's own checks of what the request asked
            return 400, *_error(str(e))

    def info(self) -> dict[str, Any]:
        cfg = self.g.cfg
        return {
            "run": str(self.run.resolve()),
            "image_size": cfg.image_size,
            "channels": cfg.channels,
            "z_dim": cfg.z_dim,
            "z_dist": cfg.z_dist,
            "interpolation": interpolation_mode(cfg, "auto"),
            "vectors": sorted(p.stem for p in self.vectors.glob("*.npy") if NAME.fullmatch(p.stem)),
        }

    def png(self, z: torch.Tensor, ncols: int) -> bytes:
        pictures = self.render(z)
        grid = make_grid(pictures, ncols, pad=2 if len(pictures) > 1 else 0)
        buf = io.BytesIO()
        Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(buf, format="PNG")
        return buf.getvalue()

    # ------------------------------------------------------------ what each kind of image is

    def _seeds(self, params: dict[str, str], key: str) -> list[int]:
        text = _get(params, key)
        try:
            seeds = parse_seeds(text)
        except DcganError as e:
            raise BadRequest(f"{key}: {e}") from None
        if len(seeds) > MAX_SEEDS:
            raise BadRequest(f"{key}: at most {MAX_SEEDS} seeds per request, got {len(seeds)}")
        return seeds

    def _mean(self, params: dict[str, str], key: str) -> torch.Tensor:
        return z_for_seeds(self.g.cfg, self._seeds(params, key)).mean(0)

    def _sample(self, p: dict[str, str]) -> View:
        seeds = self._seeds(p, "seeds")
        z = z_for_seeds(self.g.cfg, seeds)
        return View(z, len(seeds), self._command("sample", "--seeds", p["seeds"], "--grid", "sample.png"))

    def _interpolate(self, p: dict[str, str]) -> View:
        """One image on the path from A to B; its .npy is the path's two ends (mean z of A, of B), which
        `dcgan interpolate --seeds ends.npy` walks."""
        a, b = self._mean(p, "a"), self._mean(p, "b")
        t = _number(p, "t", 0, 1)
        mode = p.get("mode", "auto")
        if mode not in INTERP_MODES:
            raise BadRequest(f"mode must be one of {', '.join(INTERP_MODES)}, got {mode!r}")
        fn = slerp if interpolation_mode(self.g.cfg, mode) == "slerp" else lerp
        single = all(re.fullmatch(r"\d+", p[k].strip()) for k in ("a", "b"))
        points = f"{p['a'].strip()},{p['b'].strip()}" if single else "interpolate-z.npy"
        # the fewest columns (11 when they do) that put the slider's t on one: every step of 0.01 is exact
        steps = next((n for n in (11, *range(2, 102)) if _on_grid(t, n)), None)
        command = self._command(
            "interpolate",
            "--seeds",
            points,
            "--steps",
            str(steps or 11),
            "--mode",
            mode,
            "--grid",
            "walk.png",
        )
        if steps:
            command += f"  # t = {t:g} is column {round(t * (steps - 1)) + 1}"
        else:
            command += f"  # t = {t:g} lies between columns {int(t * 10) + 1} and {int(t * 10) + 2}"
        return View(fn(a, b, torch.tensor([t])), 1, command, torch.stack([a, b]))

    def _arithmetic(self, p: dict[str, str]) -> View:
        za, zb, zc = (z_for_seeds(self.g.cfg, self._seeds(p, k)) for k in ("a", "b", "c"))
        noise = _number(p, "noise", 0, 10, default=0.25)
        seed = int(_number(p, "seed", 0, 2**31 - 1, default=0))
        z = arithmetic_latents(za, zb, zc, noise, seed)
        command = self._command(
            "arithmetic", "--a", p["a"], "--b", p["b"], "--c", p["c"], "--noise", f"{noise:g}", "--seed", str(seed),
            "--out", "arithmetic.png",
        )  # fmt: skip
        return View(z, 3, command)

    def _walk(self, p: dict[str, str]) -> View:
        seeds = self._seeds(p, "seeds")
        v = self._vector(_get(p, "vector"))
        amount = _number(p, "amount", -100, 100)
        z = z_for_seeds(self.g.cfg, seeds) + amount * v[None]
        path = self.vectors / f"{p['vector']}.npy"
        command = self._command(
            "walk", "--vector", str(path), "--seeds", p["seeds"], "--steps", "3", "--scale", f"{abs(amount):g}",
            "--out", "walk.png",
        )  # fmt: skip
        return View(z, len(seeds), command + f"  # column {3 if amount >= 0 else 1}")

    def _vector(self, name: str) -> torch.Tensor:
        if not NAME.fullmatch(name):
            raise BadRequest(f"a vector's name is 1-64 letters, digits, '-' or '_', got {name!r}")
        path = self.vectors / f"{name}.npy"
        if not path.is_file():
            raise BadRequest(f"no vector named {name!r}; save one first")
        try:
            v = torch.from_numpy(np.load(path, allow_pickle=False)).float()
        except (OSError, ValueError) as e:
            raise BadRequest(f"the vector {name!r} could not be read ({e})") from None
        if v.shape != (self.g.cfg.z_dim,):
            raise BadRequest(
                f"the vector {name!r} has shape {tuple(v.shape)}; this z has {self.g.cfg.z_dim} values"
            )
        return v

    def save_vector(self, p: dict[str, str]) -> dict[str, str]:
        name = _get(p, "name")
        if not NAME.fullmatch(name):
            raise BadRequest(f"a vector's name is 1-64 letters, digits, '-' or '_', got {name!r}")
        v = direction(
            z_for_seeds(self.g.cfg, self._seeds(p, "from")), z_for_seeds(self.g.cfg, self._seeds(p, "to"))
        )
        path = self.vectors / f"{name}.npy"
        try:
            with self.saving:  # two clicks at once would share the temporary file
                self.vectors.mkdir(exist_ok=True)
                with atomic_path(path) as tmp, open(tmp, "wb") as f:
                    np.save(f, v.numpy())
        except OSError as e:
            raise DcganError(f"could not save {path} ({e.strerror or e})") from None
        command = self._command("vector", "--from", p["from"], "--to", p["to"], "--out", str(path))
        return {"name": name, "path": str(path), "command": command}

    def _command(self, verb: str, *args: str) -> str:
        return shlex.join(["dcgan", verb, str(self.run), *args])


class Batcher:
    """G for many request threads at once: a request queues its latents; whichever thread gets G next runs
    everything queued so far (up to the pixels of MAX_BATCH 64² images) in one forward pass and hands each request its
    images. The 48 tiles of a seed sheet, asked for together, cost about one pass, not 48. With running BN
    statistics an image depends on its z alone, whatever it is batched with."""

    MAX_BATCH = 512

    def __init__(self, g: Generator) -> None:
        self.g, self.pending, self.queue_lock, self.g_lock = g, [], threading.Lock(), threading.Lock()
        self.max_batch = max(1, self.MAX_BATCH * 64 * 64 // g.cfg.image_size**2)  # memory follows pixels
        self.passes = 0  # forward passes run (for tests and the benchmark)

    def __call__(self, z: torch.Tensor) -> np.ndarray:
        request: dict[str, Any] = {"z": z, "out": None, "error": None}
        with self.queue_lock:
            self.pending.append(request)
        with self.g_lock:
            while request["out"] is None and request["error"] is None:  # run what waits, oldest first
                with self.queue_lock:
                    batch, n = [], 0
                    while self.pending and (not batch or n + len(self.pending[0]["z"]) <= self.max_batch):
                        batch.append(self.pending.pop(0))
                        n += len(batch[-1]["z"])
                try:
                    with torch.inference_mode():
                        out = images(self.g, torch.cat([r["z"] for r in batch]))
                except BaseException as e:  # every request of the pass gets the failure, none waits forever
                    for r in batch:
                        r["error"] = e
                    continue
                self.passes += 1
                for r, part in zip(batch, np.split(out, np.cumsum([len(r["z"]) for r in batch])[:-1])):
                    r["out"] = part
        if request["error"] is not None:
            raise request["error"]
        return request["out"]


def _params(query: str) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
    except ValueError as e:
        raise BadRequest(f"unreadable parameters ({e})") from None
    return dict(pairs)


def _get(params: dict[str, str], key: str) -> str:
    if key not in params or not params[key].strip():
        raise BadRequest(f"missing parameter {key!r}")
    return params[key].strip()


def _number(params: dict[str, str], key: str, lo: float, hi: float, default: float | None = None) -> float:
    if key not in params and default is not None:
        return default
    text = _get(params, key)
    try:
        x = float(text)
    except ValueError:
        raise BadRequest(f"{key} must be a number, got {text[:40]!r}") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise BadRequest(f"{key} must be between {lo:g} and {hi:g}, got {text[:40]!r}")
    return x


def _on_grid(t: float, steps: int) -> bool:
    return abs(t * (steps - 1) - round(t * (steps - 1))) < 1e-9


def _error(message: str) -> tuple[str, bytes, dict[str, str]]:
    return "application/json", json.dumps({"error": message}).encode(), {}


# ---------------------------------------------------------------- the server


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A threading HTTP server for `explorer` (not started: call serve_forever, or use it in a thread)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "dcgan-explore"

        def _refuse(self, method: str) -> tuple[int, str] | None:
            """(status, reason) for a request the page cannot have sent: a body of a bad or large size, a
            Host other than this machine's name for a loopback server (DNS rebinding), a POST from another
            site (a cross-site form)."""
            text = self.headers.get("Content-Length") or "0"
            if not text.isdigit():
                return 400, f"a Content-Length of {text[:20]!r}"
            if int(text) > 1 << 16:
                return 413, "request body over 64 KiB"
            host = self.headers.get("Host") or ""
            local = self.server.server_address[0] in ("127.0.0.1", "localhost")
            if local and urllib.parse.urlsplit(f"//{host}").hostname not in ("127.0.0.1", "localhost"):
                return 403, f"this server answers to 127.0.0.1 and localhost, not {host[:60]!r}"
            origin = self.headers.get("Origin")
            if method == "POST" and origin is not None and urllib.parse.urlsplit(origin).netloc != host:
                return 403, f"a POST from another site ({origin[:60]!r})"
            return None

        def _answer(self, method: str) -> None:
            refused = self._refuse(method)
            if refused is not None:
                status, ctype, body, extra = refused[0], *_error(refused[1])
            else:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                try:
                    status, ctype, body, extra = explorer.handle(method, self.path, data)
                except Exception as e:  # a bug: the page gets a 500 and a line, the terminal the traceback
                    traceback.print_exc()
                    status, ctype, body, extra = (
                        500,
                        *_error(f"internal error ({type(e).__name__}); see the terminal"),
                    )
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in extra.items():  # a header is one line of latin-1: escape the rest (paths, seeds)
                self.send_header(k, printable(v).encode("ascii", "backslashreplace").decode("ascii"))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the page moved on
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the page makes a request per slider step

    if not 0 <= port <= 65535:
        raise DcganError(f"--port must be 0-65535, got {port}")
    try:
        return http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        raise DcganError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port or --host"
        ) from None


PAGE = resources.files("dcgan.report").joinpath("explore.html").read_text(encoding="utf-8")
