"""The latent-space commands (PAPER.md §6): interpolate, sheet, arithmetic, vector, walk."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from dcgan.cli.common import generator_from_args, parser_for, run_argument
from dcgan.errors import DcganError

# ---------------------------------------------------------------- latent space (PAPER.md §6)


def cmd_interpolate(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.images import save_gif, save_png
    from dcgan.sampling import interpolation_mode

    if not a.grid and not a.gif:
        raise DcganError("say where the walk goes: --grid out.png and/or --gif out.gif")
    g = generator_from_args(a)
    grid, frames = api.interpolate(g, a.seeds, steps=a.steps, mode=a.mode)
    mode = interpolation_mode(g.cfg, a.mode)
    if a.grid:
        save_png(grid, a.grid)
        print(f"grid      {a.grid} (a row per segment, {a.steps} steps, {mode})")
    if a.gif:
        save_gif(frames, a.gif, a.ms)
        print(f"gif       {a.gif} ({len(frames)} frames, {a.ms} ms each, looping, {mode})")
    return 0


def add_interpolate(sub: Any) -> None:
    p = parser_for(
        sub,
        "interpolate",
        "walk through a series of points in z (the paper walks through 9)",
        "dcgan interpolate runs/fmnist32 --seeds 3,17,42,7,99,5,61,23,8 --steps 8 --grid walk.png --gif walk.gif",
    )
    run_argument(p)
    p.add_argument("--seeds", required=True, help="the points: seeds (3,17,42) or a .npy of latents")
    p.add_argument("--steps", type=int, default=8, help="images per segment, both ends included (default 8)")
    p.add_argument(
        "--mode",
        default="auto",
        choices=("auto", "lerp", "slerp"),
        help="auto (default): linear for uniform z, spherical for Gaussian z",
    )
    p.add_argument("--grid", metavar="PNG", help="one row per segment")
    p.add_argument("--gif", metavar="GIF", help="a looping animation of the whole walk")
    p.add_argument("--ms", type=int, default=80, help="milliseconds per GIF frame (default 80)")
    p.set_defaults(fn=cmd_interpolate)


def cmd_sheet(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.images import save_png

    g = generator_from_args(a)
    seeds = api.seeds(a.seeds)
    save_png(api.sheet(g, seeds, cols=a.cols), a.out)
    print(f"sheet     {a.out} ({len(seeds)} images labelled with their seeds)")
    return 0


def add_sheet(sub: Any) -> None:
    p = parser_for(
        sub,
        "sheet",
        "a contact sheet labelled with seeds, to pick exemplars by eye",
        "dcgan sheet runs/fmnist32 --seeds 0-99 --out sheet.png",
    )
    run_argument(p)
    p.add_argument("--seeds", default="0-99", help="which images (default 0-99)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--cols", type=int, default=10, help="cells per row (default 10)")
    p.set_defaults(fn=cmd_sheet)


def cmd_arithmetic(a: argparse.Namespace) -> int:
    import numpy as np

    from dcgan import api
    from dcgan.images import save_png

    g = generator_from_args(a)
    figure, zs = api.arithmetic(g, a.a, a.b, a.c, noise=a.noise, seed=a.seed)
    save_png(figure, a.out)
    npy = os.path.splitext(a.out)[0] + ".npy"
    np.save(npy, zs.numpy())
    print(
        f"figure    {a.out} (exemplars | Y = A − B + C at the centre, ±{a.noise} around | pixel-space A − B + C)"
    )
    print(f"latents   {npy} (9 × {g.cfg.z_dim}; row 4 is Y)")
    return 0


def add_arithmetic(sub: Any) -> None:
    p = parser_for(
        sub,
        "arithmetic",
        "vector arithmetic on averaged exemplars: Y = A − B + C (paper §6.3)",
        "dcgan arithmetic runs/fmnist32 --a 12,40,77 --b 5,9,31 --c 2,8,63 --out arithmetic.png",
    )
    run_argument(p)
    for name in ("a", "b", "c"):
        p.add_argument(
            f"--{name}",
            required=True,
            help=f"exemplars of concept {name.upper()}: seeds or a .npy (the paper averages 3)",
        )
    p.add_argument(
        "--noise", type=float, default=0.25, help="uniform noise around Y for the 8 outer cells (0.25)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of that noise (default 0)")
    p.add_argument(
        "--out", required=True, metavar="PNG", help="the figure; the 9 latents go beside it as .npy"
    )
    p.set_defaults(fn=cmd_arithmetic)


def cmd_vector(a: argparse.Namespace) -> int:
    import numpy as np

    from dcgan import api
    from dcgan.fileio import atomic_path

    g = generator_from_args(a)
    v = api.vector(g, a.from_, a.to)
    with atomic_path(a.out) as tmp, open(tmp, "wb") as f:
        np.save(f, v.numpy())
    print(f"vector    {a.out} ({g.cfg.z_dim} values, norm {v.norm():.3f})")
    return 0


def add_vector(sub: Any) -> None:
    p = parser_for(
        sub,
        "vector",
        "save an attribute or turn vector: mean(z of --to) − mean(z of --from)",
        "dcgan vector runs/fmnist32 --from 3,14,15 --to 9,26,53 --out turn.npy",
    )
    run_argument(p)
    p.add_argument("--from", dest="from_", required=True, help="seeds or .npy of the starting concept")
    p.add_argument("--to", required=True, help="seeds or .npy of the target concept")
    p.add_argument("--out", required=True, metavar="NPY")
    p.set_defaults(fn=cmd_vector)


def cmd_walk(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.images import save_png

    g = generator_from_args(a)
    save_png(api.walk(g, a.vector, a.seeds, steps=a.steps, scale=a.scale), a.out)
    print(f"grid      {a.out} (a row per seed: z + t·v, t from −{a.scale:g} to +{a.scale:g})")
    return 0


def add_walk(sub: Any) -> None:
    p = parser_for(
        sub,
        "walk",
        "move samples along a saved vector (the paper's turn vector)",
        "dcgan walk runs/fmnist32 --vector turn.npy --seeds 0-5 --steps 7 --scale 2 --out turn.png",
    )
    run_argument(p)
    p.add_argument("--vector", required=True, help="a .npy saved by `dcgan vector`")
    p.add_argument("--seeds", default="0-5", help="starting points: seeds or a .npy (default 0-5)")
    p.add_argument(
        "--steps", type=int, default=7, help="images per row (default 7; odd keeps z in the middle)"
    )
    p.add_argument("--scale", type=float, default=2.0, help="t runs from −scale to +scale (default 2)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(fn=cmd_walk)


def cmd_explore(a: argparse.Namespace) -> int:
    from dcgan.report.explore import Explorer, serve

    server = serve(Explorer(a.run, generator_from_args(a)), a.host, a.port)
    host, port = server.server_address[:2]
    print(f"explore   http://{host}:{port}/  (the run {a.run}; Ctrl-C stops)", flush=True)
    if a.host not in ("127.0.0.1", "localhost"):
        print(f"warning   listening on {a.host}: anyone who can reach this machine can use the page")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM stop it cleanly — also when started from a script in the background, where the
    # shell has set SIGINT to be ignored
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_explore(sub: Any) -> None:
    p = parser_for(
        sub,
        "explore",
        "the latent space in the browser: pick exemplars, interpolate, arithmetic, vectors (a local web app)",
        "dcgan explore runs/fmnist32   # then open http://127.0.0.1:8765/",
    )
    run_argument(p)
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.set_defaults(fn=cmd_explore)
