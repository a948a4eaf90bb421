"""Fashion-MNIST: the real Debian files, and downloads from an HTTP server the test starts on 127.0.0.1."""

import functools
import gzip
import http.server
import shutil
import threading

import numpy as np
import pytest

from dcgan.data import download
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError

from helpers import run_cli

needs_debian = pytest.mark.skipif(
    not download.DEBIAN_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist (make test installs it)"
)


@pytest.fixture
def serve(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder → base URL."""
    servers = []

    def start(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a: None
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    yield start
    for srv in servers:
        srv.shutdown()


@needs_debian
def test_the_cli_prepares_60000_train_and_10000_test_images_with_6000_and_1000_per_class(tmp_path):
    r = run_cli("data", "fashion-mnist", "--out", str(tmp_path / "fm"), "--quiet")
    assert r.returncode == 0, r.stderr
    train, test = PreparedDataset(tmp_path / "fm" / "train"), PreparedDataset(tmp_path / "fm" / "test")
    assert train.images.shape == (60_000, 32, 32, 1) and test.images.shape == (10_000, 32, 32, 1)
    assert (
        np.bincount(train.labels).tolist() == [6000] * 10 and np.bincount(test.labels).tolist() == [1000] * 10
    )
    assert train.label_names[0] == "T-shirt/top" and train.manifest["split"] == "train"
    assert train.images[:, :2].max() == 0  # padded 28 → 32 with black, not resized
    r = run_cli("info", str(tmp_path / "fm" / "train"))
    assert "60,000 × 32×32×1" in r.stdout and "Ankle boot" in r.stdout and "6,000" in r.stdout
    r = run_cli("data", "fashion-mnist", "--out", str(tmp_path / "fm"), "--quiet")  # again: kept, not redone
    assert r.returncode == 0 and "60,000" in r.stdout


@needs_debian
def test_download_verifies_and_is_reused(tmp_path, serve):
    url = serve(download.DEBIAN_DIR)
    files = download.fashion_mnist_files(cache=tmp_path / "cache", base_url=url)
    assert sorted(p.name for p in files.values()) == sorted(f"{n}.gz" for n in download.FASHION_MNIST_FILES)
    assert all(p.parent == tmp_path / "cache" for p in files.values())
    files_again = download.fashion_mnist_files(cache=tmp_path / "cache", base_url="http://127.0.0.1:9/")
    assert files_again == files  # served from the cache: the dead URL is never asked


def test_checksum_mismatch_keeps_nothing_and_the_cli_says_so(tmp_path, serve):
    fake = tmp_path / "fake"
    fake.mkdir()
    for name in download.FASHION_MNIST_FILES:
        (fake / f"{name}.gz").write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x01x"))  # valid, but not theirs
    url = serve(fake)
    with pytest.raises(DcganError, match="checksum mismatch for .*train-images-idx3-ubyte.gz"):
        download.fashion_mnist_files(cache=tmp_path / "cache", base_url=url)
    assert not list((tmp_path / "cache").iterdir())
    r = run_cli("data", "fashion-mnist", "--out", str(tmp_path / "fm"), "--url", url, "--quiet")
    assert r.returncode == 2 and "checksum mismatch" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unreachable_server_is_one_clear_error(tmp_path):
    with pytest.raises(
        DcganError, match="could not download .* install the Debian package dataset-fashion-mnist"
    ):
        download.fashion_mnist_files(cache=tmp_path / "c", base_url="http://127.0.0.1:9/")


def test_a_dir_without_the_files_is_a_clear_error(tmp_path):
    with pytest.raises(DcganError, match="is not in .*it needs all four"):
        download.fashion_mnist_files(tmp_path)


@needs_debian
def test_dir_with_files_and_with_a_wrong_file(tmp_path):
    for p in download.DEBIAN_DIR.iterdir():
        shutil.copy(p, tmp_path / p.name)
    assert len(download.fashion_mnist_files(tmp_path)) == 4
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"other"))
    with pytest.raises(DcganError, match="is not the official t10k-labels-idx1-ubyte"):
        download.fashion_mnist_files(tmp_path)
