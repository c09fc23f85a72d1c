"""Image batches on the device: the prepared dataset unpacked to uint8 arrays, uploaded
once, then each batch augmented (crop, flip, cutout) and normalised on the device; the
named random streams of a run and the device choice. Shared by training (igrm.train) and
the gradient-noise estimator (igrm.noise), so both augment exactly alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def seed_for(seed: int, stream: str) -> int:
    """Independent 63-bit seed of a named random stream of a run."""
    key = [ord(ch) for ch in stream]
    return int(np.random.SeedSequence([int(seed), *key]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return dev


# --------------------------------------------------------------------------- data
def _get(data: Mapping[str, Any], *keys):
    for k in keys:
        node: Any = data
        try:
            for part in k.split("/"):
                node = node[part]
            return node
        except (KeyError, TypeError):
            try:
                return data[k]
            except (KeyError, TypeError):
                continue
    return None


def unpack_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise the dataset-layer dict to train/test uint8 NHWC arrays, int labels,
    and per-channel mean/std on the [0, 1] scale.

    Accepts flat keys ("train/images") or nested dicts (data["train"]["images"]);
    mean/std from data["attrs"]["mean"], data["mean"] or data["attrs/mean"], on the
    [0, 1] or the [0, 255] scale (detected); computed from the training images if absent.
    """
    out = {}
    for split in ("train", "test"):
        imgs = np.asarray(_get(data, f"{split}/images"))
        labels = np.asarray(_get(data, f"{split}/labels")).astype(np.int64).reshape(-1)
        if imgs.ndim == 3:
            imgs = imgs[..., None]
        if imgs.dtype != np.uint8 or imgs.ndim != 4 or len(imgs) != len(labels):
            raise ValueError(
                f"{split}/images must be uint8 (N,H,W,C) matching {split}/labels; "
                f"got {imgs.dtype} {imgs.shape} and {labels.shape}"
            )
        out[f"{split}/images"], out[f"{split}/labels"] = imgs, labels
    mean = _get(data, "attrs/mean", "mean")
    std = _get(data, "attrs/std", "std")
    if mean is None or std is None:
        x = out["train/images"].reshape(-1, out["train/images"].shape[-1]).astype(np.float64) / 255.0
        mean, std = x.mean(0), x.std(0)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.max() > 1.0 or std.max() > 1.0:
        mean, std = mean / 255.0, std / 255.0
    out["mean"], out["std"] = mean, std
    nc = _get(data, "attrs/num_classes", "num_classes")
    out["num_classes"] = (
        int(nc) if nc is not None else int(max(out["train/labels"].max(), out["test/labels"].max()) + 1)
    )
    return out


def to_device_uint8(images: np.ndarray, device: torch.device) -> Tensor:
    """(N,H,W,C) uint8 numpy -> (N,C,H,W) uint8 tensor on ``device`` with channels_last strides."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)


def normalize(x_u8: Tensor, mean: Tensor, std: Tensor, dtype=torch.float32) -> Tensor:
    """uint8 (B,C,H,W) -> (x/255 - mean)/std in ``dtype``; mean/std (C,) on the [0,1] scale."""
    x = x_u8.to(dtype).div_(255.0)
    return (x - mean.to(dtype).view(1, -1, 1, 1)) / std.to(dtype).view(1, -1, 1, 1)


def batch_crop(x: Tensor, pad: int, gen: torch.Generator) -> Tensor:
    """Random crop of each image after reflect-padding by ``pad``: one gather with
    per-image offsets (dy, dx) in [0, 2 pad]. Works on uint8 or float."""
    if pad <= 0:
        return x
    B, C, H, W = x.shape
    padded = F.pad(x.float() if x.dtype == torch.uint8 else x, (pad,) * 4, mode="reflect")
    padded = padded.to(x.dtype)
    off = torch.randint(0, 2 * pad + 1, (2, B), generator=gen, device=x.device)
    rows = off[0][:, None] + torch.arange(H, device=x.device)[None, :]  # (B, H)
    cols = off[1][:, None] + torch.arange(W, device=x.device)[None, :]  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded[b, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)  # channels_last strides


def reflect_pad_u8(x: Tensor, pad: int, chunk: int = 4096) -> Tensor:
    """The whole uint8 set reflect-padded once (in chunks, to bound the float temporary),
    so that each batch's crop is one uint8 gather (:func:`crop_padded`)."""
    if pad <= 0:
        return x
    return torch.cat(
        [F.pad(part.float(), (pad,) * 4, mode="reflect").to(torch.uint8) for part in torch.split(x, chunk)]
    )


def crop_padded(padded: Tensor, idx: Tensor, pad: int, gen: torch.Generator) -> Tensor:
    """:func:`batch_crop` of ``x[idx]`` read from the pre-padded set: the same random
    offsets from ``gen``, the same pixels, without padding each batch again."""
    if pad <= 0:
        return padded[idx]
    B = len(idx)
    H, W = padded.shape[2] - 2 * pad, padded.shape[3] - 2 * pad
    off = torch.randint(0, 2 * pad + 1, (2, B), generator=gen, device=padded.device)
    rows = off[0][:, None] + torch.arange(H, device=padded.device)[None, :]
    cols = off[1][:, None] + torch.arange(W, device=padded.device)[None, :]
    out = padded[idx[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def batch_flip(x: Tensor, gen: torch.Generator) -> Tensor:
    """Horizontal flip of a random half (Bernoulli 1/2 per image) via torch.where."""
    mask = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def batch_cutout(x: Tensor, size: int, gen: torch.Generator) -> Tensor:
    """Zero a size x size square (clipped at the border) at a uniformly random centre
    per image (DeVries & Taylor 2017). Applied after normalisation, so 0 = the mean."""
    if size <= 0:
        return x
    B, C, H, W = x.shape
    cy = torch.randint(0, H, (B,), generator=gen, device=x.device)
    cx = torch.randint(0, W, (B,), generator=gen, device=x.device)
    ys = torch.arange(H, device=x.device)[None, :] - cy[:, None] + size // 2  # (B, H)
    xs = torch.arange(W, device=x.device)[None, :] - cx[:, None] + size // 2
    inside = ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]
    return x.masked_fill(inside[:, None, :, :], 0.0)


def augment_batch(
    x_u8: Tensor,
    augment: Sequence[str],
    gen: torch.Generator,
    mean: Tensor,
    std: Tensor,
    *,
    pad: int,
    cutout_size: int,
    dtype=torch.float32,
    padded: Tensor | None = None,
    idx: Tensor | None = None,
) -> Tensor:
    """uint8 batch -> augmented, normalised float batch. Order: crop, flip (on uint8),
    normalise, cutout. "crop+flip" = crop then flip; "none" does nothing. With ``padded``
    (the set after :func:`reflect_pad_u8`) and the batch's ``idx``, the crop is read from
    it — identical pixels, no per-batch padding (``x_u8`` may then be None; the trainer
    passes ``padded`` only when a crop is asked for)."""
    augs = set(augment)
    x = x_u8
    if "crop" in augs or "crop+flip" in augs:
        x = crop_padded(padded, idx, pad, gen) if padded is not None else batch_crop(x, pad, gen)
    if "flip" in augs or "crop+flip" in augs:
        x = batch_flip(x, gen)
    x = normalize(x, mean, std, dtype)
    if "cutout" in augs:
        x = batch_cutout(x, cutout_size, gen)
    return x


# ------------------------------------------------------------------ mini-batches of a fixed population
# Shared by the gradient-noise estimator (igrm.noise) and its trajectory variant
# (igrm.noise_trajectory): which examples form each mini-batch, and the batch as the model sees it.
def minibatch_indices(
    n_examples: int, batch_size: int, n: int, sampler: str, generator: torch.Generator | None, phase: int = 0
) -> Iterator[Tensor]:
    """Index tensors (CPU, int64) of ``n`` mini-batches (docs/noise.md §5).
    iid: b indices uniform with replacement, batches independent (Cov = Σ_1/b).
    epoch: the batches of fresh random permutations, ⌊N/b⌋ per epoch (the remainder dropped,
    as training does), starting at batch ``phase`` of the first permutation (the earlier
    batches are skipped, no gradient is computed for them)."""
    if sampler == "iid":
        for _ in range(n):
            yield torch.randint(0, n_examples, (batch_size,), generator=generator)
        return
    if sampler != "epoch":
        raise ValueError(f"sampler must be one of ('iid', 'epoch'), got {sampler!r}")
    M = n_examples // batch_size
    if M < 1:
        raise ValueError(f"batch_size {batch_size} > N = {n_examples}")
    pos, done = int(phase) % M, 0
    while done < n:
        perm = torch.randperm(n_examples, generator=generator)
        while pos < M and done < n:
            yield perm[pos * batch_size : (pos + 1) * batch_size]
            pos += 1
            done += 1
        pos = 0


def device_tensors(data, device) -> dict[str, Any]:
    """A population on ``device``: (x, y) float tensors used as they are (``u8`` False), or
    the dataset layer's dict (uint8 images, normalised per batch by :func:`batch_inputs`).
    Already converted (``on_device``): returned unchanged."""
    if isinstance(data, dict) and data.get("on_device"):
        return data
    if isinstance(data, (tuple, list)):
        x, y = data
        return {"on_device": True, "x": torch.as_tensor(x).to(device), "y": torch.as_tensor(y).to(device), "u8": False}
    d = unpack_data(data)
    return {
        "on_device": True,
        "x": to_device_uint8(d["train/images"], device).contiguous(),
        "y": torch.from_numpy(d["train/labels"]).to(device),
        "u8": True,
        "mean": torch.tensor(d["mean"], dtype=torch.float32, device=device),
        "std": torch.tensor(d["std"], dtype=torch.float32, device=device),
        "num_classes": d["num_classes"],
    }


def batch_inputs(
    t: Mapping[str, Any],
    idx: Tensor,
    augment: Sequence[str],
    aug_gen: torch.Generator | None,
    *,
    pad: int,
    cutout_size: int,
) -> tuple[Tensor, Tensor]:
    """(x, y) of the examples ``idx`` of a :func:`device_tensors` population: uint8 images
    augmented and normalised as training does (:func:`augment_batch`), float ones as they are."""
    x = t["x"][idx]
    if t["u8"]:
        x = augment_batch(x, augment, aug_gen, t["mean"], t["std"], pad=pad, cutout_size=cutout_size).contiguous()
    return x, t["y"][idx]
