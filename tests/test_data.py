"""Dataset layer: download -> verify -> read safely -> prepare, against archives generated in
the real formats (tests/archives.py) and served from 127.0.0.1 or file:// URLs. No network."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import logging
import socket
from pathlib import Path

import numpy as np
import pytest

from igrm import data
from igrm.data import (
    DATASETS,
    ChecksumError,
    DownloadError,
    FormatError,
    UnsafeArchiveError,
    download,
    load_prepared,
    prepare,
)
from igrm.pipeline.config import ConfigError
from tests import archives

FAST = {"retries": 2, "backoff_s": 0.01, "timeout_s": 5.0}


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    with archives.LocalServer(root) as server:
        server.root = root
        yield server


@pytest.fixture
def site(www, request):
    """A fresh folder under the server root (URL prefix ``site.url``) for one test."""
    folder = www.root / request.node.name.replace("[", "_").replace("]", "")
    folder.mkdir()

    class Site:
        path = folder
        url = f"{www.url}{folder.name}/"

        @staticmethod
        def mode(m):
            """URL prefix under which the server misbehaves in mode ``m`` (see tests/archives.py)."""
            return f"{www.url}{m}/{folder.name}/"

        @staticmethod
        def hits(mode="", filename="cifar-10-binary.tar.gz"):
            """Requests the server got for ``filename`` in mode ``mode`` ('' = plain)."""
            return www.hits[f"/{mode}/{folder.name}/{filename}" if mode else f"/{folder.name}/{filename}"]

    return Site


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def use(monkeypatch, spec):
    monkeypatch.setitem(DATASETS, spec.name, spec)
    return spec


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_same(out, expected):
    for k, v in expected.items():
        assert out[k].dtype == v.dtype, k
        np.testing.assert_array_equal(out[k], v, err_msg=k)


# --------------------------------------------------------------------------- registry


def test_registry_checksums_and_sources():
    assert set(DATASETS) == {"cifar10", "cifar100", "mnist", "fashion_mnist"} and data.DEFAULT_DATASET == "cifar10"
    c10, c100 = DATASETS["cifar10"], DATASETS["cifar100"]
    assert c10.md5 == {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}
    assert c100.md5 == {"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"}
    assert c10.urls("cifar-10-binary.tar.gz") == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    assert (c10.num_classes, c100.num_classes, c10.image_shape) == (10, 100, (32, 32, 3))
    assert DATASETS["mnist"].image_shape == (28, 28, 1)
    assert c10.urls("x.gz", ["https://m.example/a", "file:///srv/b/"]) == [
        "https://www.cs.toronto.edu/~kriz/x.gz",
        "https://m.example/a/x.gz",
        "file:///srv/b/x.gz",
    ]
    # MNIST/Fashion-MNIST MD5s and mirrors are torchvision's (read as text: no import of torch)
    tv = importlib.util.find_spec("torchvision")
    if tv is None or tv.origin is None:
        pytest.skip("torchvision not installed")
    src = (Path(tv.origin).parent / "datasets" / "mnist.py").read_text()
    for name in ("mnist", "fashion_mnist"):
        spec = DATASETS[name]
        for f in spec.files:
            assert f'("{f.filename}", "{f.md5}")' in src
        for prefix in spec.base_urls:
            assert f'"{prefix}"' in src
    # the CIFAR python tarballs torchvision lists are never what we fetch
    cifar_src = (Path(tv.origin).parent / "datasets" / "cifar.py").read_text()
    assert "c32a1d4ab5d03f1284b67883e8d87530" not in cifar_src and "cifar-10-python.tar.gz" in cifar_src


def test_config_errors_name_the_key():
    assert data.resolve_cfg("cifar10", None)["retries"] == 3
    with pytest.raises(ConfigError, match=r"data\.cifar10\.retries"):
        data.resolve_cfg("cifar10", {"retries": -1})
    with pytest.raises(ConfigError, match=r"data\.mnist\.mirrors"):
        data.resolve_cfg("mnist", {"mirrors": "https://one.example/"})
    with pytest.raises(ConfigError, match=r"data\.mnist\.timeout_s"):
        data.resolve_cfg("mnist", {"timeout_s": 0})


# --------------------------------------------------------------------------- round trips


def test_cifar10_http_round_trip(site, tmp_path, monkeypatch, caplog):
    arc, expected = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    spec = use(monkeypatch, archives.spec_for("cifar10", [arc], [site.url]))
    raw = tmp_path / "raw"
    with caplog.at_level(logging.INFO, logger="igrm"):
        paths = download("cifar10", raw, {**FAST, "progress_s": 0.0})
    assert paths == data.archive_paths("cifar10", raw) == [raw / "cifar-10-binary.tar.gz"]
    assert paths[0].read_bytes() == arc.read_bytes()
    assert any("MB/s" in r.getMessage() for r in caplog.records)
    info = data.read_source_info(paths[0])
    assert info["source"] == site.url + "cifar-10-binary.tar.gz" and info["md5"] == spec.files[0].md5

    out = load_prepared(prepare("cifar10", paths, tmp_path / "cifar10.h5", FAST))
    assert_same(out, expected)
    assert out["train/images"].shape == (15, 32, 32, 3)
    a = out["attrs"]
    assert a["dataset"] == "cifar10" and a["num_classes"] == 10 and a["status"] == "completed"
    assert a["source_urls"] == [site.url + "cifar-10-binary.tar.gz"]
    assert a["md5"] == {"cifar-10-binary.tar.gz": spec.files[0].md5}
    assert len(a["sha256"]["cifar-10-binary.tar.gz"]) == 64
    x = expected["train/images"].astype(np.float64) / 255
    np.testing.assert_allclose(a["mean"], x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(a["std"], x.std(axis=(0, 1, 2)), rtol=1e-10)
    assert "git_commit" in a and "versions" in a
    # a second call finds the verified archive and does not fetch again
    served = site.hits()
    assert download("cifar10", raw, FAST) == paths and site.hits() == served


def test_cifar100_file_url_uses_fine_labels(tmp_path, monkeypatch):
    arc, expected = archives.make_cifar100(tmp_path / "src" / "cifar-100-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar100", [arc], [(tmp_path / "src").as_uri() + "/"]))
    paths = download("cifar100", tmp_path / "raw", FAST)
    out = load_prepared(prepare("cifar100", paths, tmp_path / "c100.h5"))
    assert_same(out, expected)
    assert out["attrs"]["source_urls"][0].startswith("file://")


def test_mnist_http_round_trip(site, tmp_path, monkeypatch):
    files, expected = archives.make_idx(site.path)
    use(monkeypatch, archives.spec_for("mnist", files, [site.url]))
    paths = download("mnist", tmp_path / "raw", FAST)
    assert [p.name for p in paths] == [f.filename for f in DATASETS["mnist"].files]
    out = load_prepared(prepare("mnist", tmp_path / "raw", tmp_path / "mnist.h5"))  # folder form
    assert_same(out, expected)
    assert out["train/images"].shape == (7, 28, 28, 1) and out["attrs"]["mean"].shape == (1,)


# --------------------------------------------------------------------------- failures


def test_checksum_mismatch_leaves_nothing(site, tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    spec = use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("corrupt")]))
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError) as exc:
        download("cifar10", raw, FAST)
    msg = str(exc.value)
    assert "MD5 mismatch" in msg and f"expected {spec.files[0].md5}" in msg and "got " in msg
    assert leftovers(raw) == []
    assert site.hits("corrupt") == 1  # a mismatch is not retried


def test_truncated_transfer_retried_then_clean_failure(site, tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("truncated")]))
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError, match="truncated transfer") as exc:
        download("cifar10", raw, FAST)
    assert "after 3 attempts" in str(exc.value)
    assert site.hits("truncated") == 1 + FAST["retries"]
    assert leftovers(raw) == []


def test_transient_5xx_is_retried_until_success(site, tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("flaky")]))
    (path,) = download("cifar10", tmp_path / "raw", FAST)  # 503, 503, then the file
    assert path.read_bytes() == arc.read_bytes()
    assert site.hits("flaky") == 3


def test_unreachable_host_error_says_how_to_get_out(tmp_path, monkeypatch):
    dead = closed_port_url()
    spec = use(
        monkeypatch,
        archives.spec_for("cifar10", [archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz")[0]], [dead]),
    )
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError) as exc:
        download("cifar10", raw, {**FAST, "retries": 1})
    msg = str(exc.value)
    assert "'cifar10'" in msg
    assert dead + "cifar-10-binary.tar.gz" in msg and "refused" in msg.lower()
    assert str((raw / "cifar-10-binary.tar.gz").resolve()) in msg
    assert "data.cifar10.mirrors" in msg and "data.cifar10.local" in msg and spec.files[0].md5 in msg
    assert exc.value.path == (raw / "cifar-10-binary.tar.gz").resolve()
    assert leftovers(raw) == []


def test_mirror_fallback_after_404(site, tmp_path, monkeypatch):
    arc, expected = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("404")]))
    (path,) = download("cifar10", tmp_path / "raw", {**FAST, "mirrors": [closed_port_url(), site.url.rstrip("/")]})
    assert site.hits("404") == 1  # 404 is not transient: no retry
    assert data.read_source_info(path)["source"] == site.url + "cifar-10-binary.tar.gz"
    out = load_prepared(prepare("cifar10", [path], tmp_path / "c10.h5"))
    assert_same(out, expected)
    assert out["attrs"]["source_urls"] == [site.url + "cifar-10-binary.tar.gz"]


def test_local_source_is_used_and_verified(tmp_path, monkeypatch):
    files, expected = archives.make_idx(tmp_path / "staged")
    use(monkeypatch, archives.spec_for("fashion_mnist", files, [closed_port_url()]))
    paths = download("fashion_mnist", tmp_path / "raw", {**FAST, "local": str(tmp_path / "staged")})
    assert all(data.read_source_info(p)["how"] == "local" for p in paths)
    assert_same(load_prepared(prepare("fashion_mnist", paths, tmp_path / "f.h5")), expected)

    # a corrupted local copy is refused, and nothing is left under the final names
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in files:
        body = f.read_bytes()
        (bad / f.name).write_bytes(body[:-1] + bytes([body[-1] ^ 0xFF]))
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        download("fashion_mnist", tmp_path / "raw2", {**FAST, "retries": 0, "local": str(bad)})
    assert leftovers(tmp_path / "raw2") == []


def test_prestaged_archive_is_verified_and_corrupt_one_moved_aside(tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(tmp_path / "src" / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [closed_port_url()]))
    raw = tmp_path / "raw"
    raw.mkdir()
    final = raw / "cifar-10-binary.tar.gz"
    final.write_bytes(arc.read_bytes())  # "place the archive at the exact path it prints"
    assert download("cifar10", raw, {**FAST, "retries": 0}) == [final]
    assert data.read_source_info(final)["how"] == "pre-staged"

    final.write_bytes(b"not the archive")
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        download("cifar10", raw, {**FAST, "retries": 0})
    assert not final.exists() and (raw / "cifar-10-binary.tar.gz.corrupt").exists()


# --------------------------------------------------------------------------- safety and formats


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_tar_member_is_rejected(tmp_path, monkeypatch, kind):
    add, member = archives.unsafe_member(kind)
    arc, _ = archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz", extra=add)
    use(monkeypatch, archives.spec_for("cifar10", [arc]))
    with pytest.raises(UnsafeArchiveError) as exc:
        prepare("cifar10", [arc], tmp_path / "out.h5")
    assert repr(member) in str(exc.value)
    assert not (tmp_path / "out.h5").exists() and not (tmp_path.parent / "evil").exists()


def test_prepare_verifies_checksum_before_parsing(tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz")
    # the real registry MD5 cannot match a generated archive
    with pytest.raises(ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530"):
        prepare("cifar10", [arc], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_format_errors_are_clear():
    with pytest.raises(FormatError, match="bad idx magic number 1234"):
        data.parse_idx((1234).to_bytes(4, "big") + bytes(4))
    with pytest.raises(FormatError, match="header says 2 images of 28x28"):
        data.parse_idx(archives.idx_images(np.zeros((2, 28, 28), np.uint8))[:-1])
    with pytest.raises(FormatError, match="header says 3 labels"):
        data.parse_idx(archives.idx_labels(np.zeros(3))[:-1])
    with pytest.raises(FormatError, match="3073-byte CIFAR record"):
        data.parse_cifar(bytes(3073 * 2 + 5), 1, 0)
    x = np.arange(2 * 32 * 32 * 3, dtype=np.uint64).astype(np.uint8).reshape(2, 32, 32, 3)
    imgs, labs = data.parse_cifar(archives.cifar_records(x, [np.array([3, 7])]), 1, 0)
    np.testing.assert_array_equal(imgs, x)
    np.testing.assert_array_equal(labs, [3, 7])


def test_label_out_of_range_and_missing_member(tmp_path, monkeypatch):
    files, _ = archives.make_idx(tmp_path / "idx")
    labels = tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(archives.idx_labels(np.array([1, 2, 10]))))
    use(monkeypatch, archives.spec_for("mnist", files))
    with pytest.raises(FormatError, match=r"labels span \[1, 10\]"):
        prepare("mnist", files, tmp_path / "m.h5")

    c100, _ = archives.make_cifar100(tmp_path / "cifar-100-binary.tar.gz")
    spec = archives.spec_for("cifar100", [c100])
    use(
        monkeypatch,
        dataclasses.replace(
            spec, members={"train": ("cifar-100-binary/nope.bin",), "test": ("cifar-100-binary/test.bin",)}
        ),
    )
    with pytest.raises(FormatError, match="nope.bin"):
        prepare("cifar100", [c100], tmp_path / "c.h5")


def test_read_timeout_is_transient_and_retried(tmp_path, monkeypatch):
    """A server that accepts the connection but never answers: each attempt times out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # the kernel completes the handshake; nobody ever replies
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        arc, _ = archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz")
        use(monkeypatch, archives.spec_for("cifar10", [arc], [url]))
        with pytest.raises(DownloadError, match=r"timed out \(after 2 attempts\)"):
            download("cifar10", tmp_path / "raw", {"retries": 1, "backoff_s": 0.01, "timeout_s": 0.2})
    assert leftovers(tmp_path / "raw") == []


# --------------------------------------------------------------------------- size caps, leftovers, DNS


def sent(www, site, mode, filename="cifar-10-binary.tar.gz"):
    return www.sent[f"/{mode}/{site.path.name}/{filename}"]


def test_every_registry_archive_has_a_size_and_a_cap():
    for spec in DATASETS.values():
        for f in spec.files:
            assert f.size and data.max_download_bytes(f) >= f.size + data.SIZE_MARGIN_MIN, (spec.name, f)
    (f,) = DATASETS["cifar10"].files
    assert f.size < data.max_download_bytes(f) < 1.05 * f.size


def test_body_without_length_is_stopped_at_the_cap(www, site, tmp_path, monkeypatch):
    """A mirror sending 200 MB with no Content-Length for a small archive: stopped just past
    the cap (size + margin), not retried, nothing left behind; the next source is tried."""
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    spec = use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("endless")]))
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError) as exc:
        download("cifar10", raw, FAST)
    assert sent(www, site, "endless") < archives.ENDLESS_BYTES / 4  # the client hung up early
    assert site.hits("endless") == 1  # not retried
    assert leftovers(raw) == []
    cap = data.max_download_bytes(spec.files[0])
    msg = str(exc.value)
    assert f"stopped after more than {cap:,} bytes" in msg and f"{spec.files[0].size:,} bytes" in msg


def test_huge_content_length_is_refused_before_reading(site, tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [site.mode("huge")]))
    raw = tmp_path / "raw"
    (path,) = download("cifar10", raw, {**FAST, "mirrors": [site.url]})  # falls back to the next source
    assert path.read_bytes() == arc.read_bytes()
    assert site.hits("huge") == 1
    with pytest.raises(DownloadError, match=r"Content-Length 10,000,000,000 bytes refused before reading"):
        download("cifar10", tmp_path / "raw2", FAST)
    assert site.hits("huge") == 2 and leftovers(tmp_path / "raw2") == []


def test_leftover_part_files_of_a_killed_download_are_removed(site, tmp_path, monkeypatch):
    arc, _ = archives.make_cifar10(site.path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], [site.url]))
    raw = tmp_path / "raw"
    raw.mkdir()
    # what a process killed mid-transfer leaves: pooch's temporary file in the staging folder,
    # and the temporary record of igrm.pipeline.io.atomic_path
    (raw / data.STAGING).mkdir()
    (raw / data.STAGING / "tmpk1ll3d").write_bytes(bytes(4096))
    (raw / ".cifar-10-binary.tar.gz.source.json.x9.part").write_text("{")
    download("cifar10", raw, FAST)
    assert leftovers(raw) == ["cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz.source.json"]


def test_name_resolution_failure_is_final(tmp_path, monkeypatch):
    """Offline: the host name does not resolve. One attempt, no backoff, a message that says so."""
    real = socket.getaddrinfo
    lookups = []

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "mirror.invalid":
            lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    arc, _ = archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz")
    use(monkeypatch, archives.spec_for("cifar10", [arc], ["http://mirror.invalid/"]))
    import time

    t0 = time.monotonic()
    with pytest.raises(DownloadError) as exc:
        download("cifar10", tmp_path / "raw", {"retries": 3, "backoff_s": 1.0, "timeout_s": 5.0})
    assert time.monotonic() - t0 < 1.0 and lookups == ["mirror.invalid"]
    msg = str(exc.value)
    assert "name resolution failed" in msg and "not retried" in msg and "attempts)" not in msg
    assert "data.cifar10.local" in msg


def test_missing_local_folder_is_reported_as_missing(tmp_path, monkeypatch):
    files, _ = archives.make_idx(tmp_path / "idx")
    use(monkeypatch, archives.spec_for("mnist", files, [closed_port_url()]))
    gone = tmp_path / "no" / "such" / "folder"
    with pytest.raises(DownloadError) as exc:
        download("mnist", tmp_path / "raw", {**FAST, "retries": 0, "local": str(gone)})
    msg = str(exc.value)
    assert f"data.mnist.local: {gone} does not exist" in msg and "is a file" not in msg


def test_gzip_crc_error_in_a_tar_is_caught(tmp_path, monkeypatch):
    """A .tar.gz whose gzip CRC is wrong (only reachable through an md5 override, which makes
    its MD5 the 'expected' one): reading the members must fail, not pass silently."""
    arc, _ = archives.make_cifar10(tmp_path / "cifar-10-binary.tar.gz")
    body = bytearray(arc.read_bytes())
    body[-8] ^= 0xFF  # the CRC32 of the gzip trailer (then ISIZE, 4 bytes)
    arc.write_bytes(bytes(body))
    use(monkeypatch, archives.spec_for("cifar10", [arc]))
    with pytest.raises(FormatError, match=r"(?i)crc"):
        prepare("cifar10", [arc], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
