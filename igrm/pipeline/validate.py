"""Every result and prepared-data HDF5 file is checked here when it is read back
(igrm.pipeline.io.read_h5 and :func:`open_checked`; docs/reliability.md, "Files read back").

A file is refused, with an error naming it and what is wrong, when it
- is not a readable HDF5 file (truncated, empty, random bytes);
- stores data outside itself: HDF5 external storage, an external or soft link, a virtual
  dataset (the bytes of another file would be read as this one's);
- was not finished: its provenance ``status`` is not ``completed`` (``diverged`` for a
  training run that diverged); or its ``config`` is not a JSON object, or is missing from
  a training run;
- sits at a path that names another run than its own config (``beta<β>``, ``eta<η>``,
  ``seed<s>`` in the file name; dataset, model and method in a training run's folders);
- holds arrays of the wrong kind: a training run's per-epoch metrics missing, not 1-D,
  not numeric, of unequal length or not ``epochs_completed`` long; an accuracy outside
  [0, 1]; a non-finite loss or accuracy in a run not marked diverged; a prepared dataset's
  images not uint8 (N, H, W, C) or labels not integer classes of the same length.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: provenance statuses of a finished result (a training run may end diverged)
FINISHED = ("completed", "diverged")
#: a training run's per-epoch arrays (igrm.train.METRICS and ``epoch``; docs/training.md)
RUN_ARRAYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq", "lr", "steps", "wall_time")
#: of which these must be finite in a run that did not diverge
RUN_FINITE = ("train_loss", "train_acc", "test_loss", "test_acc")
#: a training run's path: <dataset>/<model>/<method>/beta<β>_eta<η>_seed<s>.h5 (igrm.pipeline.targets.run_path)
RUN_PATH = re.compile(r"(?:^|/)([^/]+)/([^/]+)/([^/]+)/beta([^_/]+)_eta([^_/]+)_seed(\d+)\.h5$")
PREPARED = ("train/images", "train/labels", "test/images", "test/labels")
_TOKEN = re.compile(r"(?:^|_)(beta|eta|seed)(-?[0-9][0-9.e+-]*)(?=_|$)")


class ResultFileError(ValueError):
    """A result or prepared-data file that must not be read; the message names it."""

    def __init__(self, path, what: str):
        super().__init__(f"{path}: {what}; delete it and rerun the job that writes it (or restore a good copy)")


@contextlib.contextmanager
def open_checked(path: str | os.PathLike) -> Iterator[Any]:
    """The open h5py.File at ``path``, once it reads as HDF5 and stores nothing outside itself."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise ResultFileError(path, f"not a readable HDF5 file ({e})") from None
    with f:
        check_storage(f, path)
        yield f


def check_storage(f, path) -> None:
    """Refuse external and soft links, external storage and virtual datasets."""
    import h5py

    names: list[str] = []
    f.visit_links(names.append)
    for name in names:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ResultFileError(path, f"{name!r} is an external link to {link.filename}:{link.path}; refused")
        if isinstance(link, h5py.SoftLink):
            raise ResultFileError(path, f"{name!r} is a soft link to {link.path}; igrm writes none, refused")
        obj = f[name]
        if isinstance(obj, h5py.Dataset):
            if obj.external:
                files = sorted({str(e[0]) for e in obj.external})
                raise ResultFileError(
                    path, f"dataset {name!r} uses HDF5 external storage ({', '.join(files)}); refused"
                )
            if obj.is_virtual:
                raise ResultFileError(path, f"dataset {name!r} is a virtual dataset; refused")


def check_result(path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    """Everything but the storage (checked on opening): status, config, path, arrays."""
    status = attrs.get("status")
    prepared = all(k in arrays for k in PREPARED)
    allowed = ("completed",) if prepared else FINISHED
    if status not in allowed:
        raise ResultFileError(path, f"status is {status!r}, not {' or '.join(map(repr, allowed))} (an unfinished run)")
    if prepared:
        check_prepared(path, arrays, attrs)
        return
    m = RUN_PATH.search(Path(path).as_posix())
    run = bool(m) or "test_acc" in arrays
    # a training run must carry its config; other results are checked against it where they carry one
    config = _config(path, attrs) if run or "config" in attrs else {}
    _check_name(path, config)
    if run:
        check_run(path, arrays, attrs, config, m)
    _check_accuracies(path, arrays)


def _config(path, attrs) -> dict:
    raw = attrs.get("config")
    if raw is None:
        raise ResultFileError(path, "no 'config' attribute (provenance missing)")
    try:
        c = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError as e:
        raise ResultFileError(path, f"its 'config' attribute is not JSON ({e})") from None
    if not isinstance(c, Mapping):
        raise ResultFileError(path, f"its 'config' attribute is a {type(c).__name__}, not an object")
    return dict(c)


def _same(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-11, abs_tol=1e-300)
    except (TypeError, ValueError):
        return False


def _eta_of(config: Mapping[str, Any]):
    if "eta" in config:
        return config["eta"]
    return config.get("lr") if config.get("lr_mode") == "effective" else None


def _check_name(path, config: Mapping[str, Any]) -> None:
    """The file name's beta<β>, eta<η>, seed<s> against the file's own config, where it has them."""
    for key, text in _TOKEN.findall(Path(path).stem):
        want = _eta_of(config) if key == "eta" else config.get(key)
        if isinstance(want, (int, float)) and not isinstance(want, bool) and not _same(text, want):
            raise ResultFileError(path, f"its file name says {key} {text}, its config says {key} {want}")


def check_run(path, arrays, attrs, config: Mapping[str, Any], m) -> None:
    """A training run: its folders against its config; its per-epoch arrays."""
    if m:
        for key, got in zip(("dataset", "model", "method"), m.groups()[:3], strict=True):
            if key in config and str(config[key]) != got:
                raise ResultFileError(path, f"it sits in folder {got!r} but its config says {key} {config[key]!r}")
    missing = [k for k in RUN_ARRAYS if k not in arrays]
    if missing:
        raise ResultFileError(path, f"not a training run's result: datasets {missing} missing")
    n = None
    for k in RUN_ARRAYS:
        a = arrays[k]
        if a.ndim != 1 or a.dtype.kind not in "fiu":
            raise ResultFileError(path, f"dataset {k!r} is {a.dtype} of shape {a.shape}, not a 1-D numeric array")
        if n is not None and len(a) != n:
            raise ResultFileError(path, f"dataset {k!r} has {len(a)} epochs, 'epoch' has {n}")
        n = len(a) if n is None else n
    done = attrs.get("epochs_completed")
    if done is not None and int(done) != n:
        raise ResultFileError(path, f"epochs_completed is {done} but its arrays hold {n} epochs")
    if not np.array_equal(arrays["epoch"], np.arange(1, n + 1)):
        raise ResultFileError(path, "dataset 'epoch' is not 1, 2, …")
    if attrs.get("status") == "completed":
        # test metrics exist only after evaluated epochs: every eval_every-th and the last
        # (igrm.train.eval_due; full-batch runs record NaN in between)
        every = int(attrs.get("eval_every", 1))
        if every < 1:
            raise ResultFileError(path, f"eval_every is {every}, not a positive number of epochs")
        evaluated = (arrays["epoch"] % every == 0) | (arrays["epoch"] == n)
        for k in RUN_FINITE:
            a = arrays[k].astype(float)
            bad = np.flatnonzero(~np.isfinite(a) & (evaluated if k.startswith("test_") else True))
            if bad.size:
                raise ResultFileError(
                    path, f"{k} is not finite at epoch {bad[0] + 1} in a run marked completed (not diverged)"
                )


def _check_accuracies(path, arrays) -> None:
    """Every ``*_acc`` array in [0, 1] where finite (NaN only where the run diverged)."""
    for k, a in arrays.items():
        if not k.split("/")[-1].endswith("_acc") or a.dtype.kind not in "fiu":
            continue
        v = a.astype(float)
        out = v[np.isfinite(v) & ((v < 0) | (v > 1))]
        if out.size:
            raise ResultFileError(path, f"accuracy {k!r} holds {out[0]:g}, outside [0, 1]")


def check_prepared(path, arrays, attrs) -> None:
    """A prepared dataset (igrm.data.prepare): uint8 (N, H, W, C) images, N integer labels
    in [0, num_classes). ``arrays`` may hold h5py datasets (only shapes and dtypes are read
    of the images)."""
    if attrs.get("status") != "completed":
        raise ResultFileError(path, f"status is {attrs.get('status')!r}, not 'completed' (an unfinished file)")
    missing = [k for k in PREPARED if k not in arrays]
    if missing:
        raise ResultFileError(path, f"not a prepared dataset: datasets {missing} missing")
    classes = attrs.get("num_classes")
    for part in ("train", "test"):
        im, lab = arrays[f"{part}/images"], arrays[f"{part}/labels"]
        if im.dtype != np.uint8 or len(im.shape) != 4:
            raise ResultFileError(path, f"{part}/images is {im.dtype} of shape {im.shape}, not uint8 (N, H, W, C)")
        if lab.dtype.kind not in "iu" or len(lab.shape) != 1 or lab.shape[0] != im.shape[0]:
            raise ResultFileError(
                path, f"{part}/labels is {lab.dtype} of shape {lab.shape}, not {im.shape[0]} integer labels"
            )
        lv = np.asarray(lab[()])
        if lv.size and (lv.min() < 0 or (classes is not None and lv.max() >= int(classes))):
            raise ResultFileError(path, f"{part}/labels outside [0, {classes})")
