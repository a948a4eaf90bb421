"""`dcgan explore` (src/dcgan/report/explore.py): the requests, the server, and the page in a real browser."""

import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan.images import make_grid
from dcgan.report.explore import Explorer, serve
from dcgan.report.latent import images
from dcgan.sampling import z_for_seeds

from helpers import browser, console_errors, full_page_screenshot, run_cli


@pytest.fixture(scope="module")
def explorer(tiny_run, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("explore") / "run"
    shutil.copytree(tiny_run, run)
    return Explorer(run)


def png(body: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(body)) as img:
        return np.asarray(img)


def test_an_arithmetic_request_is_the_grid_and_the_latents_of_dcgan_arithmetic(explorer, tmp_path):
    query = "a=1,2,3&b=4,5,6&c=7,8,9&noise=0.25&seed=0"
    status, ctype, body, headers = explorer.handle("GET", f"/api/arithmetic.png?{query}")
    assert (status, ctype) == (200, "image/png")
    status, _, npy, _ = explorer.handle("GET", f"/api/arithmetic.npy?{query}")
    page_z = np.load(io.BytesIO(npy))
    r = run_cli(
        *["arithmetic", str(explorer.run), "--a", "1,2,3", "--b", "4,5,6", "--c", "7,8,9"],
        *["--out", str(tmp_path / "fig.png")],
    )
    assert r.returncode == 0, r.stderr
    cli_z = np.load(tmp_path / "fig.npy")
    np.testing.assert_array_equal(page_z, cli_z)  # the same 9 latents, bit for bit
    expected = make_grid(images(explorer.g, torch.from_numpy(cli_z)), 3)
    np.testing.assert_array_equal(png(body), expected[:, :, 0] if expected.shape[2] == 1 else expected)
    assert headers["X-Dcgan-Command"].startswith(
        f"dcgan arithmetic {explorer.run} --a 1,2,3 --b 4,5,6 --c 7,8,9"
    )


def test_interpolation_moves_with_t_and_its_ends_are_the_two_exemplars(explorer):
    at = [png(explorer.handle("GET", f"/api/interpolate.png?a=3&b=9&t={t}")[2]) for t in (0, 0.5, 1)]
    ends = images(explorer.g, z_for_seeds(explorer.g.cfg, [3, 9]))
    np.testing.assert_array_equal(at[0], ends[0])
    np.testing.assert_array_equal(at[2], ends[1])
    assert not np.array_equal(at[1], at[0]) and not np.array_equal(at[1], at[2])
    _, _, npy, headers = explorer.handle("GET", "/api/interpolate.npy?a=3&b=9&t=0.5")
    assert np.load(io.BytesIO(npy)).shape == (2, explorer.g.cfg.z_dim)  # the path's ends, for the CLI
    assert "--seeds 3,9 --steps 11" in headers["X-Dcgan-Command"] and "column 6" in headers["X-Dcgan-Command"]
    for t, steps, column in (("0.25", 5, 2), ("0.37", 101, 38), ("0.5", 11, 6), ("1", 11, 11)):
        command = explorer.handle("GET", f"/api/interpolate.png?a=3&b=9&t={t}")[3]["X-Dcgan-Command"]
        assert f"--steps {steps} " in command and command.endswith(f"# t = {t} is column {column}"), command
    command = explorer.handle("GET", "/api/interpolate.png?a=3&b=9&t=0.123")[3]["X-Dcgan-Command"]
    assert command.endswith("# t = 0.123 lies between columns 2 and 3"), command


def test_a_saved_vector_is_the_cli_vector_and_walks(explorer, tmp_path):
    status, _, body, _ = explorer.handle("POST", "/api/vector", b"from=1,2&to=3,4&name=turn-1")
    saved = json.loads(body)
    assert status == 200 and saved["path"].endswith("vectors/turn-1.npy")
    assert (
        run_cli(
            "vector", str(explorer.run), "--from", "1,2", "--to", "3,4", "--out", str(tmp_path / "v.npy")
        ).returncode
        == 0
    )
    np.testing.assert_array_equal(np.load(saved["path"]), np.load(tmp_path / "v.npy"))
    assert "turn-1" in json.loads(explorer.handle("GET", "/api/info")[2])["vectors"]
    np.testing.assert_array_equal(
        np.load(io.BytesIO(explorer.handle("GET", "/api/vector.npy?name=turn-1")[2])),
        np.load(tmp_path / "v.npy"),
    )
    zero, moved = (
        png(explorer.handle("GET", f"/api/walk.png?seeds=5&vector=turn-1&amount={x}")[2]) for x in (0, 2)
    )
    assert not np.array_equal(zero, moved)


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("GET", "/api/sample.png", b"", 400, "missing parameter 'seeds'"),
        ("GET", "/api/sample.png?seeds=0-9999", b"", 400, "at most 256 seeds"),
        ("GET", "/api/sample.png?seeds=x", b"", 400, "seeds:"),
        ("GET", "/api/interpolate.png?a=1&b=2&t=nan", b"", 400, "t must be between 0 and 1"),
        ("GET", "/api/interpolate.png?a=1&b=2&t=0.5&mode=cubic", b"", 400, "mode must be one of"),
        ("GET", "/api/walk.png?seeds=1&vector=../../config&amount=1", b"", 400, "a vector's name"),
        ("GET", "/api/walk.png?seeds=1&vector=nothere&amount=1", b"", 400, "no vector named 'nothere'"),
        ("GET", "/api/arithmetic.png?a=1&b=2&c=3&noise=1e9", b"", 400, "noise must be between 0 and 10"),
        ("POST", "/api/vector", b"from=1&to=2&name=/etc/x", 400, "a vector's name"),
        ("POST", "/api/vector", b"\xff\xfe", 400, "missing parameter"),
        ("GET", "/api/vector", b"", 405, "does not take GET"),
        ("POST", "/api/sample.png", b"", 405, "does not take POST"),
        ("GET", "/api/bogus.png", b"", 404, "no such page"),
        ("GET", "/../../etc/passwd", b"", 404, "no such page"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(explorer, method, path, body, status, message):
    got, ctype, answer, _ = explorer.handle(method, path, body)
    assert (got, ctype) == (status, "application/json") and message in json.loads(answer)["error"]


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["sample", "interpolate", "arithmetic", "walk", "seeds", "info", "nothing"]),
    ext=st.sampled_from([".png", ".npy", ""]),
    query=st.dictionaries(
        st.sampled_from(["seeds", "a", "b", "c", "t", "mode", "noise", "seed", "vector", "amount", "x"]),
        st.one_of(
            st.text(max_size=12), st.sampled_from(["0", "1", "0-3", "2,5", "0.5", "-1", "inf", "1e400"])
        ),
        max_size=6,
    ),
)
def test_any_request_is_answered_never_raised(explorer, kind, ext, query):
    from urllib.parse import urlencode

    status, _, body, _ = explorer.handle("GET", f"/api/{kind}{ext}?{urlencode(query)}")
    assert status in (200, 400, 404, 405)
    if status != 200:
        assert json.loads(body)["error"]


def test_the_server_answers_over_http_and_refuses_oversized_bodies(explorer):
    server = serve(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/api/sample.png?seeds=0-3") as r:
            assert r.status == 200 and png(r.read()).shape[:2] == (16 + 4, 4 * 16 + 5 * 2)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/vector", data=b"x" * 70000))
        assert e.value.code == 413
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}/api/sample.png?seeds=-1")
        assert e.value.code == 400 and "error" in json.loads(e.value.read())
        # Arabic-Indic digits are seeds to int(); the command header that quotes them stays ASCII
        with urllib.request.urlopen(f"{base}/api/sample.png?seeds=%D9%A3") as r:
            assert r.status == 200 and "\\u0663" in r.headers["X-Dcgan-Command"]
    finally:
        server.shutdown()
        server.server_close()


IMAGE_DATA = """
var img = document.getElementById(arguments[0]);
if (!img.complete || !img.naturalWidth) return null;
var c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL();
"""


def wait_for(fn, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting in the browser")


def test_the_page_picks_interpolates_computes_arithmetic_and_walks_in_a_real_browser(explorer, tmp_path):
    server = serve(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with browser(width=1200, height=1000) as b:
            b.get(f"http://127.0.0.1:{server.server_address[1]}/")
            tiles = wait_for(lambda: b.find_elements("css selector", ".tile img"))
            assert len(tiles) == 48
            wait_for(
                lambda: b.execute_script(
                    "return Array.from(document.querySelectorAll('.tile img')).every(i => i.complete && i.naturalWidth > 0)"
                )
            )
            for group, seeds in (("a", [1, 2]), ("b", [7]), ("c", [11, 12])):
                b.find_element("css selector", f"input[name=group][value={group}]").click()
                for s in seeds:
                    b.find_element("css selector", f".tile[data-seed='{s}']").click()
            assert b.find_element("id", "group-a").text == "1, 2"
            first = wait_for(lambda: b.execute_script(IMAGE_DATA, "interp-img"))
            b.execute_script(
                "var s = document.getElementById('interp-t'); s.value = 0.9; s.dispatchEvent(new Event('input'));"
            )
            moved = wait_for(
                lambda: (lambda d: d if d and d != first else None)(
                    b.execute_script(IMAGE_DATA, "interp-img")
                )
            )
            assert moved != first  # the slider changed the image
            assert "interpolate-z.npy" in b.find_element("id", "interp-cmd").text  # A is a mean of two seeds
            b.find_element("id", "arith-go").click()
            wait_for(lambda: b.execute_script(IMAGE_DATA, "arith-img"))
            s = explorer.g.cfg.image_size
            assert (
                b.execute_script("return document.getElementById('arith-img').naturalWidth") == 3 * s + 4 * 2
            )
            assert b.find_element("id", "arith-cmd").text.startswith("dcgan arithmetic")
            b.find_element("id", "vec-save").click()
            wait_for(lambda: b.execute_script(IMAGE_DATA, "walk-img"))
            assert "saved" in b.find_element("id", "vec-saved").text
            assert console_errors(b) == []
            full_page_screenshot(b, tmp_path / "explore.png")
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_requests_share_forward_passes_and_get_their_own_images(explorer):
    from concurrent.futures import ThreadPoolExecutor

    before = explorer.render.passes
    with ThreadPoolExecutor(16) as pool:
        got = list(
            pool.map(lambda s: png(explorer.handle("GET", f"/api/sample.png?seeds={s}")[2]), range(48))
        )
    alone = images(explorer.g, z_for_seeds(explorer.g.cfg, range(48)))
    for s in range(48):
        np.testing.assert_array_equal(got[s], alone[s])
    assert explorer.render.passes - before < 48  # batched, not one pass per tile


def test_the_command_prints_its_address_serves_and_stops_on_ctrl_c(explorer):
    import re
    import signal
    import subprocess
    import sys

    p = subprocess.Popen(
        [sys.executable, "-m", "dcgan.cli", "explore", str(explorer.run), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "api/info") as r:
            assert json.loads(r.read())["z_dim"] == explorer.g.cfg.z_dim
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=90)  # reads the pipes while waiting: a full pipe cannot block the exit
        assert p.returncode == 0 and "Traceback" not in err
    finally:
        p.kill()


def test_the_server_refuses_what_the_page_cannot_have_sent(explorer):
    """Another site's form (POST with its Origin), a rebound DNS name (Host), a lying Content-Length."""
    import http.client

    from dcgan.errors import DcganError

    server = serve(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def ask(method, path, headers, body=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"{}").get("error", "")

    try:
        assert ask("GET", "/api/info", {"Host": "evil.example:80"}) == (
            403,
            "this server answers to 127.0.0.1 and localhost, not 'evil.example:80'",
        )
        status, message = ask("POST", "/api/vector", {"Origin": "http://evil.example"}, b"from=1&to=2&name=x")
        assert status == 403 and "another site" in message
        status, _ = ask("POST", "/api/vector", {"Origin": f"http://127.0.0.1:{port}"}, b"from=1&to=2&name=x")
        assert status == 200  # the page's own POST
        assert ask("POST", "/api/vector", {"Content-Length": "-5"})[0] == 400
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(DcganError, match="--port must be 0-65535, got 70000"):
        serve(explorer, port=70000)
