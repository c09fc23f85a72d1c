"""Datasets: download -> verify -> read safely -> prepare one HDF5 file per dataset.

Four image-classification datasets (docs/theory.md §8):
``cifar10`` (the default), ``cifar100``, ``mnist`` and ``fashion_mnist``.

* :func:`download` fetches each archive of a dataset with pooch (its HTTP/FTP downloaders,
  the check against the published MD5, the temporary file deleted unless the MD5 matches;
  SHA-256 is computed and recorded too): nothing reads an archive before it is verified, and
  the final name only ever holds a verified archive. Sources, in order: the file already at
  the final name, the config's ``local`` path, the official URL(s), the config's
  ``mirrors``. Transient errors (connection errors, timeouts, HTTP 5xx/408/429, truncated
  bodies) are retried with exponential backoff; a 404, a checksum mismatch, a failed name
  resolution or a transfer over the size cap (:func:`max_download_bytes`: refused on its
  Content-Length, or cut off) moves on to the next source. What a killed download left is
  removed first. When every source fails, :class:`DownloadError` says what was tried and the
  two ways out (pre-stage the archive at the printed path, or configure
  ``data.<name>.mirrors`` / ``data.<name>.local``).
* Nothing downloaded is ever unpickled: CIFAR comes as the *binary* archives, read
  member by member straight out of the tar (never extracted to disk), every member
  checked (:class:`UnsafeArchiveError`); MNIST-style data are gzipped idx files.
* :func:`prepare` writes ``train/images``, ``train/labels``, ``test/images``,
  ``test/labels`` (uint8 NHWC, int64) with checksums, sources, per-channel statistics
  and provenance, atomically through :func:`igrm.pipeline.io.write_h5`;
  :func:`load_prepared` reads it back.

See docs/data.md for sources, checksums, offline pre-staging and the safety rules.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from igrm.pipeline.io import atomic_path, current_umask, now_iso, provenance, read_h5, write_h5

log = logging.getLogger("igrm")

CHUNK = 1 << 20
# Download cap (:func:`max_download_bytes`): an archive's registry size plus this margin (a
# re-packed archive behind an md5 override may differ slightly); unknown sizes get the fallback.
SIZE_MARGIN = 0.02
SIZE_MARGIN_MIN = 1 << 20
MAX_UNKNOWN_SIZE = 1 << 30
MAX_GZIP_BYTES = 256 * 1024 * 1024  # decompressed idx file cap (real ones are < 50 MB)


# --------------------------------------------------------------------------- errors


class DataError(Exception):
    """Base class of the dataset layer's errors."""


class DownloadError(DataError):
    """No source gave a verified archive. The message names the dataset, each source
    tried with its error, the exact path to pre-stage the archive at, and the config keys."""

    def __init__(
        self,
        message: str,
        *,
        dataset: str = "",
        filename: str = "",
        path: Path | None = None,
        attempts: Sequence[tuple[str, str]] = (),
    ):
        super().__init__(message)
        self.dataset = dataset
        self.filename = filename
        self.path = path
        self.attempts = list(attempts)


class ChecksumError(DataError):
    """A file's MD5 differs from the published one."""


class TruncatedTransferError(DataError):
    """Fewer (or more) bytes arrived than the server announced in Content-Length."""


class OversizeTransferError(DataError):
    """A server announced or sent more bytes than the archive can have (:func:`max_download_bytes`):
    refused before reading, or stopped as soon as the cap is passed. Not retried."""


class UnsafeArchiveError(DataError):
    """A tar member is absolute, climbs out with '..', is a link or a special file."""


class FormatError(DataError):
    """A file does not have the structure of its format (magic number, sizes, labels)."""


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ArchiveFile:
    """One file to download: its name, published MD5, and size in bytes where known."""

    filename: str
    md5: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to fetch, verify and read one dataset.

    ``base_urls`` are the official URL prefixes, tried in order (a file's URL is
    prefix + filename). ``members`` names, per split, the tar members (CIFAR: the
    binary batch files inside the one archive) or the files (idx: images, labels).
    """

    name: str
    format: str  # "cifar" (binary records in a tar.gz) or "idx" (gzipped idx files)
    files: tuple[ArchiveFile, ...]
    base_urls: tuple[str, ...]
    num_classes: int
    image_shape: tuple[int, int, int]  # H, W, C
    members: Mapping[str, tuple[str, ...]]
    n_train: int
    n_test: int
    label_bytes: int = 0  # CIFAR: label bytes before the 3072 pixel bytes of a record
    label_index: int = 0  # CIFAR: which of those label bytes is the label used
    checksum_source: str = ""
    homepage: str = ""

    @property
    def md5(self) -> dict[str, str]:
        return {f.filename: f.md5 for f in self.files}

    @property
    def sizes(self) -> dict[str, int | None]:
        return {f.filename: f.size for f in self.files}

    def file(self, filename: str) -> ArchiveFile:
        for f in self.files:
            if f.filename == filename:
                return f
        raise KeyError(f"{self.name} has no file {filename!r}; its files: {[f.filename for f in self.files]}")

    def urls(self, filename: str, mirrors: Iterable[str] = ()) -> list[str]:
        """Official URLs of ``filename`` in order, then the mirrors' (URL prefixes)."""
        return [_join_url(p, filename) for p in (*self.base_urls, *mirrors)]


def _join_url(prefix: str, filename: str) -> str:
    return prefix + filename if prefix.endswith("/") else f"{prefix}/{filename}"


_TORONTO = "https://www.cs.toronto.edu/~kriz/"
# The CIFAR binary archives' MD5s are published on the dataset authors' page,
# https://www.cs.toronto.edu/~kriz/cifar.html (table "Download", rows "binary version").
# torchvision (datasets/cifar.py) lists only the *python* (pickled) tarballs
# (c58f30108f718f92721af3b95e74349a, eb9058c3a382ffc7106e4002c42a8d85), which we never use.
# Sizes: 170,052,171 and 168,513,733 bytes (progress, and the download cap: max_download_bytes).
_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (binary version rows)"
# MNIST / Fashion-MNIST: file names, MD5s and mirror lists exactly as in torchvision 0.29
# (torchvision/datasets/mnist.py, classes MNIST and FashionMNIST: `resources`, `mirrors`);
# sizes in bytes of those files (progress, and the download cap: max_download_bytes).
_TV_SOURCE = "torchvision/datasets/mnist.py (resources, mirrors), torchvision 0.29.1"

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="cifar10",
        format="cifar",
        files=(ArchiveFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", 170_052_171),),
        base_urls=(_TORONTO,),
        num_classes=10,
        image_shape=(32, 32, 3),
        members={
            "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
            "test": ("cifar-10-batches-bin/test_batch.bin",),
        },
        n_train=50_000,
        n_test=10_000,
        label_bytes=1,
        label_index=0,
        checksum_source=_CIFAR_SOURCE,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        format="cifar",
        files=(ArchiveFile("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", 168_513_733),),
        base_urls=(_TORONTO,),
        num_classes=100,
        image_shape=(32, 32, 3),
        members={"train": ("cifar-100-binary/train.bin",), "test": ("cifar-100-binary/test.bin",)},
        n_train=50_000,
        n_test=10_000,
        label_bytes=2,
        label_index=1,  # coarse byte, fine byte: use fine
        checksum_source=_CIFAR_SOURCE,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        format="idx",
        files=(
            ArchiveFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
            ArchiveFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
            ArchiveFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
            ArchiveFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
        ),
        base_urls=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        num_classes=10,
        image_shape=(28, 28, 1),
        members={
            "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        },
        n_train=60_000,
        n_test=10_000,
        checksum_source=_TV_SOURCE,
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        format="idx",
        files=(
            ArchiveFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
            ArchiveFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29_515),
            ArchiveFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4_422_102),
            ArchiveFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5_148),
        ),
        base_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        num_classes=10,
        image_shape=(28, 28, 1),
        members={
            "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        },
        n_train=60_000,
        n_test=10_000,
        checksum_source=_TV_SOURCE,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
}
DEFAULT_DATASET = "cifar10"

# Per-dataset config: ``data.<name>`` of the pipeline config (schema `$defs/dataset_source`,
# where its defaults live): mirrors (URL prefixes tried after the official URL), local (an
# archive or folder tried first), md5 overrides, retries (extra attempts per URL), backoff_s
# (wait before retry r: backoff_s * 2**r), timeout_s (socket timeout), progress_s.


def bytes_cfg(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of one dataset's config (``data.<name>``) that decides the data's bytes (the
    ``md5`` overrides): the data rules' params, so that only a change of it reruns download,
    prepare and everything after. The other keys (mirrors, local, retries, backoff_s,
    timeout_s, progress_s) only say how to fetch bytes that are MD5-verified anyway; the
    scripts read them from the config, and changing them reruns nothing (rules/data.smk)."""
    cfg = cfg or {}
    return {"md5": {str(k): str(v).lower() for k, v in sorted(dict(cfg.get("md5") or {}).items())}}


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    if isinstance(name, DatasetSpec):
        return name
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def spec_for(name: str | DatasetSpec, cfg: Mapping[str, Any] | None = None) -> DatasetSpec:
    """The dataset's spec with the config's ``md5`` overrides applied.

    ``data.<name>.md5: {filename: md5}`` replaces a published checksum; it exists only for
    a private mirror that serves a re-packed archive (and for the pipeline's tests, which
    serve small archives in the real formats). Unknown file names are an error naming the key.
    """
    import dataclasses

    from igrm.pipeline.config import ConfigError

    spec = get_spec(name)
    overrides = dict((cfg or {}).get("md5") or {})
    if not overrides:
        return spec
    known = {f.filename for f in spec.files}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"data.{spec.name}.md5: unknown archive file(s) {unknown}; {spec.name} has {sorted(known)}")
    files = tuple(dataclasses.replace(f, md5=overrides.get(f.filename, f.md5).lower()) for f in spec.files)
    return dataclasses.replace(spec, files=files)


def resolve_cfg(name: str, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``cfg`` (``data.<name>``) with the schema's defaults filled in by the one filler
    (igrm.pipeline.config.with_defaults; the pipeline's config has them already, a direct
    caller may pass less), type-checked; errors name the key ``data.<name>.<key>``. Keys
    this module does not know are kept (other stages may read them)."""
    from igrm.pipeline.config import ConfigError, with_defaults

    out = with_defaults(dict(cfg or {}), path=f"data/{name}")
    key = f"data.{name}"
    mirrors = out["mirrors"]
    if mirrors is None:
        mirrors = []
    if isinstance(mirrors, str) or not all(isinstance(m, str) and m for m in mirrors):
        raise ConfigError(f"{key}.mirrors: expected a list of URL prefixes, got {mirrors!r}")
    out["mirrors"] = list(mirrors)
    if out["local"] is not None and not isinstance(out["local"], (str, os.PathLike)):
        raise ConfigError(f"{key}.local: expected a path (archive or folder), got {out['local']!r}")
    if not isinstance(out["retries"], int) or isinstance(out["retries"], bool) or out["retries"] < 0:
        raise ConfigError(f"{key}.retries: expected an integer >= 0, got {out['retries']!r}")
    for k in ("backoff_s", "timeout_s", "progress_s"):
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (k == "timeout_s" and v == 0):
            raise ConfigError(f"{key}.{k}: expected a number {'> 0' if k == 'timeout_s' else '>= 0'}, got {v!r}")
        out[k] = float(v)
    return out


def archive_paths(name: str | DatasetSpec, raw_dir: str | os.PathLike) -> list[Path]:
    """The files :func:`download` leaves in ``raw_dir`` (for Snakemake outputs)."""
    return [Path(raw_dir) / f.filename for f in get_spec(name).files]


# --------------------------------------------------------------------------- hashing


def file_digests(path: str | os.PathLike) -> dict[str, Any]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            n += len(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "bytes": n}


def verify_file(path: str | os.PathLike, expected_md5: str) -> dict[str, Any]:
    """MD5/SHA-256 of ``path``; :class:`ChecksumError` unless the MD5 is ``expected_md5``."""
    d = file_digests(path)
    if d["md5"] != expected_md5.lower():
        raise ChecksumError(f"MD5 mismatch for {path}: expected {expected_md5}, got {d['md5']} ({d['bytes']} bytes)")
    return d


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".source.json")


def _write_sidecar(path: Path, info: Mapping[str, Any]) -> None:
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(json.dumps(dict(info), indent=1, sort_keys=True) + "\n")


def read_source_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record :func:`download` wrote beside an archive (source URL, checksums), if any."""
    side = _sidecar(Path(path))
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- download (pooch)
#
# pooch (https://www.fatiando.org/pooch) fetches each URL: its downloaders (HTTP/HTTPS through
# requests, FTP), the MD5 check of the transfer against the known hash, the temporary file that
# is deleted unless the hash matches, and the move of the verified file. What is ours: the order
# of the sources (pre-staged file, `local`, official URLs, mirrors), which errors are retried
# (pooch's `retry_if_failed` also retries a 404 and a checksum mismatch, with fixed waits of
# 1, 2, ... 10 s that `backoff_s` could not set), the size cap, `file://` sources, progress lines
# in the job's log, and the DownloadError that says how to get out when every source fails.

STAGING = ".incoming"  # beside the archives: pooch's temporary file and verified copy, before the rename


def max_download_bytes(f: ArchiveFile) -> int:
    """The most bytes a download of ``f`` may bring: its registry size plus a margin
    (``SIZE_MARGIN`` of it, at least ``SIZE_MARGIN_MIN``: an archive re-packed behind a
    ``data.<name>.md5`` override may differ slightly); ``MAX_UNKNOWN_SIZE`` when the size is unknown."""
    if not f.size:
        return MAX_UNKNOWN_SIZE
    return int(f.size) + max(SIZE_MARGIN_MIN, int(f.size * SIZE_MARGIN))


def _oversize_hint(f: ArchiveFile, cap: int) -> str:
    size = f"{f.size:,} bytes" if f.size else "of unknown size"
    return (
        f"{f.filename} is {size}, so at most {cap:,} bytes are accepted; "
        f"a source serving a larger file is not serving this archive"
    )


class _Transfer:
    """The file a pooch downloader writes to, and its progress bar (pooch's protocol: ``total``,
    ``update``, ``reset``, ``close``). It counts the bytes actually written, logs a progress line
    every ``every_s`` seconds, and enforces the size cap: a ``total`` over the cap (the server's
    Content-Length, which the downloader sets before it reads the body) is refused, and a body
    is stopped as soon as it passes the cap."""

    def __init__(self, out, f: ArchiveFile, label: str, every_s: float):
        self.out, self.f, self.label, self.every = out, f, label, every_s
        self.cap = max_download_bytes(f)
        self.n, self._total = 0, None
        self.t0 = self.last = time.monotonic()

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        if value and value > self.cap:
            raise OversizeTransferError(
                f"Content-Length {value:,} bytes refused before reading: {_oversize_hint(self.f, self.cap)}"
            )
        self._total = int(value) if value else None

    def write(self, chunk: bytes) -> None:
        if self.n + len(chunk) > self.cap:
            raise OversizeTransferError(
                f"stopped after more than {self.cap:,} bytes "
                f"(no Content-Length announced it): {_oversize_hint(self.f, self.cap)}"
            )
        self.out.write(chunk)
        self.n += len(chunk)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("downloading %s", self._line(now))

    def flush(self) -> None:
        self.out.flush()

    def update(self, n: int) -> None:  # pooch passes its chunk size; the bytes are counted in write()
        pass

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _line(self, now: float) -> str:
        mb, total = self.n / 1e6, self._total or self.f.size
        of = f" / {total / 1e6:.1f} MB ({100 * self.n / total:.1f}%)" if total else " MB"
        return f"{self.label}: {mb:.1f}{of}, {mb / max(now - self.t0, 1e-9):.2f} MB/s"

    def done(self) -> None:
        if self._total is not None and self.n != self._total:
            raise TruncatedTransferError(
                f"truncated transfer: received {self.n} of {self._total} bytes announced by Content-Length"
            )
        now = time.monotonic()
        log.info("downloaded %s in %.1f s", self._line(now), now - self.t0)


def _downloader(f: ArchiveFile, cfg: Mapping[str, Any]):
    """A pooch downloader (``(url, output_file, pooch)``) that streams into a :class:`_Transfer`:
    pooch's HTTPDownloader for http(s) (timeout ``timeout_s``, no content decoding: the bytes
    checked are the bytes served), a plain copy for ``file://``, pooch's choice otherwise (FTP)."""
    import pooch

    from igrm import __version__

    headers = {"User-Agent": f"igrm/{__version__} (pooch/{pooch.__version__})", "Accept-Encoding": "identity"}

    def fetch(url: str, output_file: str, instance) -> None:
        with open(output_file, "wb") as out:
            t = _Transfer(out, f, f"{f.filename} from {url}", cfg["progress_s"])
            scheme = urllib.parse.urlsplit(url).scheme.lower()
            if scheme == "file":
                src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
                with open(src, "rb") as fh:
                    t.total = os.fstat(fh.fileno()).st_size
                    shutil.copyfileobj(fh, t, CHUNK)
            elif scheme in ("http", "https"):
                pooch.HTTPDownloader(progressbar=t, chunk_size=CHUNK, timeout=cfg["timeout_s"], headers=headers)(
                    url, t, instance
                )
            else:
                pooch.choose_downloader(url, progressbar=t)(url, t, instance)
            t.done()

    return fetch


def _fetch_url(url: str, final: Path, f: ArchiveFile, cfg: Mapping[str, Any], how: str = "download") -> dict[str, Any]:
    """One attempt: pooch fetches ``url`` into the staging folder beside ``final`` and checks
    its MD5 (a mismatch deletes it); the verified file is then renamed onto ``final``."""
    import pooch

    pooch.get_logger().setLevel(logging.WARNING)  # its "Downloading ..." line: ours says the same, in the job log
    staging = final.parent / STAGING
    pooch.retrieve(url, known_hash=f"md5:{f.md5}", fname=final.name, path=staging, downloader=_downloader(f, cfg))
    staged = staging / final.name
    os.chmod(staged, 0o666 & ~current_umask())  # pooch's temporary file is 0600
    os.replace(staged, final)
    return {"file": f.filename, "source": url, "how": how, **file_digests(final), "fetched": now_iso()}


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and what it wraps (``__cause__``, ``__context__``, urllib3's ``reason``, exception args)."""
    out: list[BaseException] = []
    stack = [err]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or any(e is o for o in out):
            continue
        out.append(e)
        stack += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return out


def _is_name_resolution_error(err: BaseException) -> bool:
    return any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in _causes(err))


def _hash_mismatch(err: BaseException) -> re.Match | None:
    """pooch's ValueError for a transfer whose hash is not the known one."""
    if isinstance(err, ValueError):
        return re.search(r"expected (?:md5:)?(\w+) but got (\w+)", str(err))
    return None


def _is_transient(err: BaseException) -> bool:
    import requests

    if isinstance(err, requests.HTTPError) and err.response is not None:
        code = err.response.status_code
        return code >= 500 or code in (408, 429)
    if _is_name_resolution_error(err):
        return False  # DNS: offline or a wrong host name; retrying only costs the backoff
    return isinstance(
        err,
        (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            TruncatedTransferError,
            TimeoutError,
            ConnectionError,
        ),
    )


def _describe(err: BaseException) -> str:
    import requests

    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    if _is_name_resolution_error(err):
        why = next((c for c in _causes(err) if isinstance(c, socket.gaierror)), err)
        return f"name resolution failed ({why}): offline, or a wrong host name in the URL? (not retried)"
    if m := _hash_mismatch(err):
        return f"MD5 mismatch: expected {m[1]}, got {m[2]}"
    if isinstance(err, requests.Timeout):
        return f"{'connection' if isinstance(err, requests.ConnectTimeout) else 'read'} timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        short = next((c for c in _causes(err) if type(c).__name__ == "IncompleteRead"), err)
        return f"truncated transfer: {short!r}"
    if m := re.search(r"Failed to establish a new connection: ([^\"')]+)", str(err)):
        return f"{type(err).__name__}: failed to connect: {m[1]}"
    return f"{type(err).__name__}: {err}"


def _local_candidate(local: str | os.PathLike, f: ArchiveFile, spec: DatasetSpec) -> Path:
    p = Path(local).expanduser()
    if not p.exists():
        what = f"the archive {f.filename}" if len(spec.files) == 1 else f"the folder holding {f.filename}"
        raise FileNotFoundError(f"data.{spec.name}.local: {p} does not exist; set data.{spec.name}.local to {what}")
    if p.is_dir():
        return p / f.filename
    if p.name == f.filename or len(spec.files) == 1:
        return p
    raise FileNotFoundError(
        f"{p} is a file but {spec.name} needs {len(spec.files)} files; "
        f"point data.{spec.name}.local at the folder holding {f.filename}"
    )


def download(name: str | DatasetSpec, dest_dir: str | os.PathLike, cfg: Mapping[str, Any] | None = None) -> list[Path]:
    """Fetch and verify every archive of dataset ``name`` into ``dest_dir``; return their paths
    (``dest_dir/<filename>``, see :func:`archive_paths`), each with a ``<filename>.source.json``
    record of where it came from and its MD5/SHA-256.

    Sources, in order: a verified file already at the final path; ``cfg['local']``; the
    official URL(s); ``cfg['mirrors']``. Raises :class:`DownloadError` when all fail.
    """
    spec = get_spec(name)
    c = resolve_cfg(spec.name, cfg)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return [_obtain(spec, f, dest / f.filename, c) for f in spec.files]
    finally:
        shutil.rmtree(dest / STAGING, ignore_errors=True)


def _remove_partial(final: Path) -> None:
    """Delete what a killed earlier download left beside ``final``: the staging folder
    (pooch's temporary files) and temporary records (``.<filename>.*.part``, igrm.pipeline.io.atomic_path)."""
    staging = final.parent / STAGING
    leftovers = [*staging.iterdir()] if staging.is_dir() else []
    leftovers += final.parent.glob(f".{final.name}.*.part")
    for part in leftovers:
        log.warning("removing %s, left by an interrupted earlier download", part)
        part.unlink(missing_ok=True)


def _obtain(spec: DatasetSpec, f: ArchiveFile, final: Path, cfg: Mapping[str, Any]) -> Path:
    attempts: list[tuple[str, str]] = []
    _remove_partial(final)
    if final.exists():
        d = file_digests(final)
        if d["md5"] == f.md5.lower():
            log.info("%s: %s already present and verified (MD5 %s)", spec.name, final, d["md5"])
            if (read_source_info(final) or {}).get("md5") != d["md5"]:
                _write_sidecar(
                    final,
                    {
                        "file": f.filename,
                        "source": final.resolve().as_uri(),
                        "how": "pre-staged",
                        **d,
                        "fetched": now_iso(),
                    },
                )
            return final
        aside = final.with_name(final.name + ".corrupt")
        os.replace(final, aside)
        msg = f"MD5 mismatch: expected {f.md5}, got {d['md5']} ({d['bytes']} bytes); moved to {aside}"
        log.warning("%s: existing %s: %s", spec.name, final, msg)
        attempts.append((final.resolve().as_uri(), msg))

    if cfg["local"] is not None:
        try:
            src = _local_candidate(cfg["local"], f, spec)
            if not src.is_file():
                raise FileNotFoundError(f"no such file: {src}")
            info = _fetch_url(src.resolve().as_uri(), final, f, cfg, how="local")
            _write_sidecar(final, info)
            log.info("%s: %s copied from %s and verified (MD5 %s)", spec.name, f.filename, src, info["md5"])
            return final
        except (OSError, DataError, ValueError) as err:
            attempts.append((f"local {cfg['local']}", _describe(err)))
            log.warning("%s: local source %s failed: %s", spec.name, cfg["local"], _describe(err))

    for url in spec.urls(f.filename, cfg["mirrors"]):
        for attempt in range(cfg["retries"] + 1):
            try:
                log.info("%s: downloading %s", spec.name, url)
                info = _fetch_url(url, final, f, cfg)
                _write_sidecar(final, info)
                return final
            except (OSError, DataError, ValueError) as err:  # requests' errors are OSErrors
                last = attempt == cfg["retries"] or not _is_transient(err)
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                log.warning(
                    "%s: %s: %s%s",
                    spec.name,
                    url,
                    _describe(err),
                    "" if last else f"; retrying in {cfg['backoff_s'] * 2**attempt:g} s",
                )
                if last:
                    attempts.append((url, _describe(err) + tries))
                    break
                time.sleep(cfg["backoff_s"] * 2**attempt)
    raise _download_error(spec, f, final, attempts)


def _download_error(spec: DatasetSpec, f: ArchiveFile, final: Path, attempts) -> DownloadError:
    tried = "\n".join(f"  - {src}: {err}" for src, err in attempts) or "  (no sources)"
    size = f", {f.size:,} bytes" if f.size else ""
    msg = (
        f"Could not obtain {f.filename} for dataset '{spec.name}' (expected MD5 {f.md5}{size}).\n"
        f"Sources tried:\n{tried}\n"
        f"Ways out:\n"
        f"  1. download it elsewhere (official: {spec.urls(f.filename)[0]}) and place it at exactly\n"
        f"       {final.resolve()}\n"
        f"     or set the config key data.{spec.name}.local to that file or to the folder holding it\n"
        f"     (it is MD5-verified before use);\n"
        f"  2. set the config key data.{spec.name}.mirrors to a list of URL prefixes that serve "
        f"{f.filename}, e.g.\n"
        f'       data: {{{spec.name}: {{mirrors: ["https://my.mirror.example/{spec.name}/"]}}}}\n'
        f"  3. offline, train on the real Fashion-MNIST from Debian instead (no download):\n"
        f"       apt-get install dataset-fashion-mnist\n"
        f"       snakemake --cores all --configfile presets/fashion_mnist.yaml\n"
        f"The rest of the run (toys, error orders, noise calibration) goes on without this dataset;\n"
        f"what it could not make is listed in results/tables/claims_summary.partial.md.\n"
        f"See docs/data.md (offline pre-staging)."
    )
    return DownloadError(msg, dataset=spec.name, filename=f.filename, path=final.resolve(), attempts=attempts)


# --------------------------------------------------------------------------- safe reading


def _clean_member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def check_member(member: tarfile.TarInfo, archive: str | os.PathLike = "") -> None:
    """Raise :class:`UnsafeArchiveError` unless ``member`` is a regular file or folder with
    a relative path that stays inside the archive's folder."""
    name = member.name
    where = f" in {archive}" if archive else ""
    posix = name.replace("\\", "/")
    if not name or posix.startswith("/") or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        raise UnsafeArchiveError(f"unsafe tar member {name!r}{where}: absolute path")
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchiveError(f"unsafe tar member {name!r}{where}: '..' leaves the extraction folder")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"unsafe tar member {name!r}{where}: "
            f"{'symlink' if member.issym() else 'hard link'} to {member.linkname!r} "
            f"(links are not allowed)"
        )
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(
            f"unsafe tar member {name!r}{where}: not a regular file or folder (tar type {member.type!r})"
        )


def read_tar_members(
    archive: str | os.PathLike, wanted: Iterable[str], max_bytes: int | None = None
) -> dict[str, bytes]:
    """Read the regular-file members ``wanted`` of a (compressed) tar into memory, without
    writing anything to disk. *Every* member is checked (:func:`check_member`) first;
    a wanted member that occurs twice or is missing is an error. The compressed stream is
    read to its end, so a gzip CRC error is a :class:`FormatError`."""
    wanted = {_clean_member_name(w) for w in wanted}
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                check_member(m, archive)
            for m in members:
                name = _clean_member_name(m.name)
                if not m.isreg() or name not in wanted:
                    continue
                if name in out:
                    raise UnsafeArchiveError(f"tar member {m.name!r} occurs more than once in {archive}")
                if max_bytes is not None and m.size > max_bytes:
                    raise FormatError(f"tar member {m.name!r} in {archive} is {m.size} bytes (> {max_bytes})")
                fh = tf.extractfile(m)
                out[name] = fh.read() if fh is not None else b""
            # tarfile stops at the end-of-archive blocks, before the compressed stream's end:
            # read on to its end so that the gzip CRC and length (bz2/xz: their checks) are verified
            while tf.fileobj.read(CHUNK):
                pass
    except (tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise FormatError(f"{archive} is not a readable tar archive: {err}") from err
    missing = sorted(wanted - set(out))
    if missing:
        raise FormatError(f"{archive} lacks the member(s) {missing}")
    return out


def read_gzip(path: str | os.PathLike, max_bytes: int = MAX_GZIP_BYTES) -> bytes:
    """Decompress a .gz file into memory, refusing more than ``max_bytes``."""
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except (gzip.BadGzipFile, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise FormatError(f"{path} is not a readable gzip file: {err}") from err
    if len(data) > max_bytes:
        raise FormatError(f"{path} decompresses to more than {max_bytes} bytes")
    return data


# --------------------------------------------------------------------------- formats

IDX_IMAGES, IDX_LABELS = 2051, 2049  # 0x00000803 (ubyte, 3 dims), 0x00000801 (ubyte, 1 dim)


def parse_idx(data: bytes, source: str = "idx data") -> np.ndarray:
    """Parse an idx file (magic 2051: uint8 images N x rows x cols -> (N, rows, cols, 1);
    magic 2049: uint8 labels N -> (N,)); sizes are checked against the header."""
    if len(data) < 8:
        raise FormatError(f"{source}: {len(data)} bytes is too short for an idx header")
    magic = int.from_bytes(data[0:4], "big")
    n = int.from_bytes(data[4:8], "big")
    if magic == IDX_IMAGES:
        if len(data) < 16:
            raise FormatError(f"{source}: {len(data)} bytes is too short for an idx image header")
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        expected = 16 + n * rows * cols
        if len(data) != expected:
            raise FormatError(
                f"{source}: header says {n} images of {rows}x{cols} ({expected} bytes), file has {len(data)} bytes"
            )
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols, 1).copy()
    if magic == IDX_LABELS:
        if len(data) != 8 + n:
            raise FormatError(f"{source}: header says {n} labels ({8 + n} bytes), file has {len(data)} bytes")
        return np.frombuffer(data, np.uint8, offset=8).copy()
    raise FormatError(
        f"{source}: bad idx magic number {magic} (0x{magic:08x}); "
        f"expected {IDX_IMAGES} (images) or {IDX_LABELS} (labels)"
    )


def parse_cifar(
    data: bytes, label_bytes: int, label_index: int, source: str = "CIFAR data"
) -> tuple[np.ndarray, np.ndarray]:
    """Parse CIFAR binary records (``label_bytes`` label bytes, then 3072 pixel bytes: 1024
    red, 1024 green, 1024 blue, row-major) -> images uint8 (N, 32, 32, 3), labels int64."""
    rec = label_bytes + 3 * 32 * 32
    if not data or len(data) % rec:
        raise FormatError(
            f"{source}: {len(data)} bytes is not a positive multiple of the "
            f"{rec}-byte CIFAR record ({label_bytes} label byte(s) + 3072 pixels)"
        )
    a = np.frombuffer(data, np.uint8).reshape(-1, rec)
    labels = a[:, label_index].astype(np.int64)
    images = np.ascontiguousarray(a[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _match_raw(spec: DatasetSpec, raw_paths) -> dict[str, Path]:
    """``{filename: path}`` for each file of ``spec`` from a folder, one path, a list of paths
    or an existing ``{filename: path}`` mapping."""
    if isinstance(raw_paths, Mapping):
        raw_paths = list(raw_paths.values())
    if isinstance(raw_paths, (str, os.PathLike)) and Path(raw_paths).is_dir():
        paths = [Path(raw_paths) / f.filename for f in spec.files]
    elif isinstance(raw_paths, (str, os.PathLike)):
        paths = [Path(raw_paths)]
    else:
        paths = [Path(p) for p in raw_paths]
    by_name = {p.name: p for p in paths}
    missing = [f.filename for f in spec.files if f.filename not in by_name]
    if missing:
        raise FileNotFoundError(f"{spec.name}: raw files {missing} not among {[str(p) for p in paths]}")
    return {f.filename: by_name[f.filename] for f in spec.files}


def read_raw(name: str | DatasetSpec, raw_paths) -> dict[str, np.ndarray]:
    """Parse already *verified* archives into ``{'train/images', 'train/labels', 'test/images',
    'test/labels'}`` (uint8 NHWC, int64). Use :func:`prepare`, which verifies first."""
    spec = get_spec(name)
    paths = _match_raw(spec, raw_paths)
    out: dict[str, np.ndarray] = {}
    if spec.format == "cifar":
        (archive,) = paths.values()
        rec = spec.label_bytes + 3072
        blobs = read_tar_members(
            archive, [m for ms in spec.members.values() for m in ms], max_bytes=rec * max(spec.n_train, spec.n_test)
        )
        for split, members in spec.members.items():
            parts = [parse_cifar(blobs[m], spec.label_bytes, spec.label_index, f"{archive}:{m}") for m in members]
            out[f"{split}/images"] = np.concatenate([p[0] for p in parts])
            out[f"{split}/labels"] = np.concatenate([p[1] for p in parts])
    elif spec.format == "idx":
        for split, (img_file, lab_file) in spec.members.items():
            images = parse_idx(read_gzip(paths[img_file]), str(paths[img_file]))
            labels = parse_idx(read_gzip(paths[lab_file]), str(paths[lab_file]))
            if images.ndim != 4 or labels.ndim != 1:
                raise FormatError(
                    f"{spec.name} {split}: {img_file} must hold images (magic {IDX_IMAGES}) "
                    f"and {lab_file} labels (magic {IDX_LABELS})"
                )
            if len(images) != len(labels):
                raise FormatError(f"{spec.name} {split}: {len(images)} images but {len(labels)} labels")
            out[f"{split}/images"] = images
            out[f"{split}/labels"] = labels.astype(np.int64)
    else:
        raise ValueError(f"{spec.name}: unknown format {spec.format!r}")
    for split in spec.members:
        img, lab = out[f"{split}/images"], out[f"{split}/labels"]
        if img.shape[1:] != tuple(spec.image_shape):
            raise FormatError(
                f"{spec.name} {split}: images have shape {img.shape[1:]}, expected {tuple(spec.image_shape)}"
            )
        if lab.size and (lab.min() < 0 or lab.max() >= spec.num_classes):
            raise FormatError(
                f"{spec.name} {split}: labels span [{lab.min()}, {lab.max()}], expected [0, {spec.num_classes - 1}]"
            )
    return out


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of uint8 NHWC images on the [0, 1] scale
    (pixel / 255), from exact integer sums, in chunks to bound memory."""
    c = images.shape[-1]
    s = np.zeros(c, np.int64)
    s2 = np.zeros(c, np.int64)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].reshape(-1, c).astype(np.int64)
        s += x.sum(0)
        s2 += (x * x).sum(0)
    n = images.size // c
    mean = s / n
    var = np.maximum(s2 / n - mean * mean, 0.0)
    return mean / 255.0, np.sqrt(var) / 255.0


# --------------------------------------------------------------------------- prepare / load

_JSON_ATTRS = ("source_urls", "md5", "sha256", "archives", "config", "versions")


def prepare(
    name: str | DatasetSpec, raw_paths, out_h5: str | os.PathLike, cfg: Mapping[str, Any] | None = None
) -> Path:
    """Verify the archives (MD5 against the registry), parse them and write ``out_h5``
    atomically (one write, via :func:`igrm.pipeline.io.write_h5`).

    ``raw_paths``: the paths :func:`download` returned (or the folder holding them).
    Datasets: ``train/images``, ``test/images`` (uint8, N x H x W x C), ``train/labels``,
    ``test/labels`` (int64). Root attributes: see docs/data.md.
    """
    spec = get_spec(name)
    paths = _match_raw(spec, raw_paths)
    archives = {}
    for fname, p in paths.items():
        d = verify_file(p, spec.file(fname).md5)  # verify before parsing
        side = read_source_info(p) or {}
        source = side.get("source") if side.get("md5") == d["md5"] else None
        archives[fname] = {**d, "source": source or p.resolve().as_uri(), "how": side.get("how", "pre-staged")}
    arrays = read_raw(spec, paths)
    mean, std = channel_stats(arrays["train/images"])
    attrs = {
        "dataset": spec.name,
        "format": spec.format,
        "num_classes": int(spec.num_classes),
        "image_shape": np.asarray(spec.image_shape, np.int64),
        "n_train": int(len(arrays["train/labels"])),
        "n_test": int(len(arrays["test/labels"])),
        "layout": "images uint8 N x H x W x C (NHWC); labels int64",
        "source_urls": [a["source"] for a in archives.values()],
        "md5": {k: a["md5"] for k, a in archives.items()},
        "sha256": {k: a["sha256"] for k, a in archives.items()},
        "archives": archives,
        "checksum_source": spec.checksum_source,
        "mean": mean.astype(np.float64),
        "std": std.astype(np.float64),
        "stats": "per channel over the train set on the [0, 1] scale (pixel / 255); population std",
    }
    if (attrs["n_train"], attrs["n_test"]) != (spec.n_train, spec.n_test):
        log.warning(
            "%s: %d train / %d test images, the official split has %d / %d",
            spec.name,
            attrs["n_train"],
            attrs["n_test"],
            spec.n_train,
            spec.n_test,
        )
    prov = provenance(config={"dataset": spec.name, "data": resolve_cfg(spec.name, cfg)})
    out = write_h5(out_h5, arrays, attrs, prov=prov)
    log.info("%s: wrote %s (%d train, %d test)", spec.name, out, attrs["n_train"], attrs["n_test"])
    return out


def load_prepared(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by :func:`prepare`: ``{'train/images', 'train/labels', 'test/images',
    'test/labels'}`` as numpy arrays plus ``'attrs'`` (JSON attributes decoded; ``mean``,
    ``std`` float arrays)."""
    arrays, attrs = read_h5(path)
    if attrs.get("status") != "completed":
        raise FormatError(f"{path}: status is {attrs.get('status')!r}, not 'completed'")
    need = ("train/images", "train/labels", "test/images", "test/labels")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise FormatError(f"{path}: not a prepared dataset file (missing {missing})")
    for k in _JSON_ATTRS:
        if isinstance(attrs.get(k), str):
            try:
                attrs[k] = json.loads(attrs[k])
            except ValueError:
                pass
    out: dict[str, Any] = {k: arrays[k] for k in need}
    out["attrs"] = attrs
    return out
