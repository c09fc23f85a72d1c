"""Small archives in the datasets' real formats, and a local HTTP server to serve them.

Tests never touch the internet (docs/data.md): they build CIFAR-10/100 *binary* tar.gz
archives and MNIST idx.gz files with a handful of random records, and serve them from
127.0.0.1 or file:// URLs. :func:`spec_for` turns a registry entry into one whose MD5s are
those of the generated files and whose official URL is the test server.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from igrm.data import DATASETS, ArchiveFile, DatasetSpec


def md5_of(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def cifar_records(images: np.ndarray, labels: list[np.ndarray]) -> bytes:
    """Binary CIFAR records: label byte(s), then 1024 R, 1024 G, 1024 B bytes (row-major)."""
    n = len(images)
    planes = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    lab = np.stack([np.asarray(l, np.uint8) for l in labels], axis=1)
    return np.concatenate([lab, planes], axis=1).astype(np.uint8).tobytes()


def _write_tar(path: Path, members: list[tuple[str, bytes | None]], extra=None) -> Path:
    """members: (name, data) for a file, (name, None) for a folder. ``extra(tf)`` may add
    further (e.g. unsafe) members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members:
            _add_dir(tf, name) if data is None else _add_bytes(tf, name, data)
        if extra is not None:
            extra(tf)
    return path


def make_cifar10(path, n_per_batch: int = 3, n_test: int = 4, seed: int = 0, extra=None):
    """cifar-10-binary.tar.gz layout: cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin,
    batches.meta.txt, readme.html. Returns (path, expected arrays)."""
    rng = np.random.default_rng(seed)
    top = "cifar-10-batches-bin"
    members: list[tuple[str, bytes | None]] = [(top, None)]
    train_x, train_y = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (n_per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch)
        train_x.append(x)
        train_y.append(y)
        members.append((f"{top}/data_batch_{i}.bin", cifar_records(x, [y])))
    tx = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    ty = rng.integers(0, 10, n_test)
    members += [
        (f"{top}/test_batch.bin", cifar_records(tx, [ty])),
        (f"{top}/batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"),
        (f"{top}/readme.html", b"<html>test archive</html>\n"),
    ]
    _write_tar(Path(path), members, extra)
    expected = {
        "train/images": np.concatenate(train_x),
        "train/labels": np.concatenate(train_y).astype(np.int64),
        "test/images": tx,
        "test/labels": ty.astype(np.int64),
    }
    return Path(path), expected


def make_cifar100(path, n_train: int = 6, n_test: int = 4, seed: int = 1):
    """cifar-100-binary.tar.gz layout: cifar-100-binary/{train,test}.bin with a coarse then a
    fine label byte per record, plus the label-name files."""
    rng = np.random.default_rng(seed)
    top = "cifar-100-binary"
    members: list[tuple[str, bytes | None]] = [(top, None)]
    expected = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        coarse = fine // 5  # any value in [0, 20): must not be taken for the label
        members.append((f"{top}/{split}.bin", cifar_records(x, [coarse, fine])))
        expected[f"{split}/images"] = x
        expected[f"{split}/labels"] = fine.astype(np.int64)
    members += [(f"{top}/coarse_label_names.txt", b"aquatic_mammals\n"), (f"{top}/fine_label_names.txt", b"apple\n")]
    _write_tar(Path(path), members)
    return Path(path), expected


def idx_images(x: np.ndarray) -> bytes:
    n, r, c = x.shape[:3]
    return (2051).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, r, c)) + x.astype(np.uint8).tobytes()


def idx_labels(y: np.ndarray) -> bytes:
    return (2049).to_bytes(4, "big") + len(y).to_bytes(4, "big") + np.asarray(y, np.uint8).tobytes()


def make_idx(folder, n_train: int = 7, n_test: int = 3, seed: int = 2):
    """The four MNIST / Fashion-MNIST files (gzipped idx) in ``folder``. Returns (paths, expected)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected, paths = {}, []
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        for kind, data in (("images-idx3", idx_images(x)), ("labels-idx1", idx_labels(y))):
            p = folder / f"{prefix}-{kind}-ubyte.gz"
            p.write_bytes(gzip.compress(data, mtime=0))
            paths.append(p)
        expected[f"{split}/images"] = x[..., None]
        expected[f"{split}/labels"] = y.astype(np.int64)
    return paths, expected


def unsafe_member(kind: str):
    """An ``extra`` callback for :func:`make_cifar10` adding one unsafe member; returns
    (callback, the member's name)."""

    def add(tf: tarfile.TarFile) -> None:
        if kind == "dotdot":
            _add_bytes(tf, "cifar-10-batches-bin/../../evil", b"pwned")
        elif kind == "absolute":
            _add_bytes(tf, "/tmp/igrm-evil", b"pwned")
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("cifar-10-batches-bin/link")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "/etc/passwd" if kind == "symlink" else "../../outside"
            tf.addfile(info)
        elif kind == "fifo":
            info = tarfile.TarInfo("cifar-10-batches-bin/pipe")
            info.type = tarfile.FIFOTYPE
            tf.addfile(info)
        else:
            raise ValueError(kind)

    names = {
        "dotdot": "cifar-10-batches-bin/../../evil",
        "absolute": "/tmp/igrm-evil",
        "symlink": "cifar-10-batches-bin/link",
        "hardlink": "cifar-10-batches-bin/link",
        "fifo": "cifar-10-batches-bin/pipe",
    }
    return add, names[kind]


def spec_for(name: str, files, base_urls=()) -> DatasetSpec:
    """The registry entry ``name`` with the MD5s (and sizes) of the generated ``files`` and
    ``base_urls`` as its official URL prefixes."""
    by_name = {Path(p).name: Path(p) for p in files}
    spec = DATASETS[name]
    new_files = tuple(
        ArchiveFile(f.filename, md5_of(by_name[f.filename]), by_name[f.filename].stat().st_size) for f in spec.files
    )
    return dataclasses.replace(spec, files=new_files, base_urls=tuple(base_urls))


# --------------------------------------------------------------------------- HTTP server

ENDLESS_BYTES = 200 * 1000 * 1000  # "a mirror that sends 200 MB without a Content-Length"
HUGE_LENGTH = 10 * 1000**3  # "a 10 GB Content-Length"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.root``; path prefixes change the behaviour:
    /404/... not found; /truncated/... Content-Length 1000 bytes larger than the body, then
    close; /flaky/... 503 for the first ``server.flaky_failures`` requests of each path;
    /corrupt/... the body with its first byte flipped; /endless/... no Content-Length, the body
    then zeros (up to ``ENDLESS_BYTES``) until the client hangs up; /huge/... Content-Length
    ``HUGE_LENGTH``, the body, then close. ``server.sent[path]``: body bytes written."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.hits[self.path] += 1
        mode, _, rest = self.path.lstrip("/").partition("/")
        if mode not in ("404", "truncated", "flaky", "corrupt", "endless", "huge"):
            mode, rest = "plain", self.path.lstrip("/")
        target = (srv.root / rest).resolve()
        if mode == "404" or srv.root not in target.parents or not target.is_file():
            return self._send(404, b"not found")
        if mode == "flaky" and srv.hits[self.path] <= srv.flaky_failures:
            return self._send(503, b"try again")
        body = target.read_bytes()
        if mode == "corrupt":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if mode in ("endless", "huge"):
            self.send_response(200)
            if mode == "huge":
                self.send_header("Content-Length", str(HUGE_LENGTH))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(body)
                srv.sent[self.path] += len(body)
                zeros = bytes(1 << 16)
                while mode == "endless" and srv.sent[self.path] < ENDLESS_BYTES:
                    self.wfile.write(zeros)
                    srv.sent[self.path] += len(zeros)
            except OSError:  # the client hung up (what a download cap does)
                pass
            return
        if mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self._send(200, body, "application/octet-stream")

    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (free port) serving ``root`` in a background thread."""

    def __init__(self, root, flaky_failures: int = 2):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.root = Path(root).resolve()
        self.httpd.hits = Counter()
        self.httpd.sent = Counter()
        self.httpd.flaky_failures = flaky_failures
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def hits(self) -> Counter:
        return self.httpd.hits

    @property
    def sent(self) -> Counter:
        return self.httpd.sent

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
