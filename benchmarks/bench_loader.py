"""On-device CIFAR loader + augmentation (igrm.train's way) vs a torchvision DataLoader loop.

Both sides do the same work per epoch: shuffle, random crop after a reflect pad of 4,
horizontal flip with probability 1/2, normalise, cutout (16x16, clipped at the border),
batch 128, last incomplete batch dropped.

- **igrm (on device)**: the uint8 (N, C, H, W) set lives on the device (channels_last);
  each epoch one ``torch.randperm``; per batch ``igrm.train.augment_batch`` (one gather
  for the crops, ``torch.where`` flip, normalise, cutout mask) with a seeded generator.
- **torchvision DataLoader**: a Dataset of HWC uint8 images turned into PIL images (what
  ``torchvision.datasets.CIFAR10`` does), ``transforms.RandomCrop(32, padding=4,
  padding_mode="reflect")``, ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``,
  then a cutout transform on the tensor; ``DataLoader(shuffle=True, drop_last=True)``
  with ``num_workers`` 0 and 2 (pin_memory on CUDA), each batch moved to the device.

Measured, side by side in one run, loaders interleaved (the shared machine's load
drifts over minutes, so each round visits every loader): (a) images/s of the loader
alone over a whole epoch of ``--n-loader`` images (default 50 000, the CIFAR-10
training set size; DataLoader worker start-up included, as in a real epoch), best of
``--repeats`` epochs; (b) images/s of a full training step (forward, backward, SGD+M
update) of ResNet-18 at ``--width`` fed by each loader, median over ``--rounds`` rounds
of ``--steps`` steps after ``--warmup`` steps, on ``--n-train`` images. igrm.train pads
the uint8 set once (NCHW, channels_last strides) and gathers each batch's crop; a third
on-device variant keeps the padded set NHWC (``--no-prepad`` skips it).

    .venv/bin/python benchmarks/bench_loader.py                   # CPU
    python benchmarks/bench_loader.py --device cuda --bf16 --width 1   # GPU

Synthetic images in the CIFAR format (uint8 32x32x3, 10 classes) unless ``--data``
names a prepared dataset HDF5 (igrm.data.load_prepared). Writes
benchmarks/out/bench_loader.json (git-ignored) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from igrm.batches import augment_batch, reflect_pad_u8, to_device_uint8
from igrm.models import build_model

OUT = Path(__file__).resolve().parent / "out"
AUGMENT = ["crop+flip", "cutout"]
PAD, CUTOUT = 4, 16


# ------------------------------------------------------------------ data
def load_images(args):
    if args.data:
        from igrm.data import load_prepared

        d = load_prepared(args.data)
        imgs = np.asarray(d["train/images"])
        labels = np.asarray(d["train/labels"]).astype(np.int64)
        reps = -(-args.n_loader // len(imgs))
        return np.concatenate([imgs] * reps)[: args.n_loader], np.concatenate([labels] * reps)[: args.n_loader]
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (args.n_loader, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.n_loader).astype(np.int64)
    return imgs, labels


def stats(imgs):
    x = imgs[:5000].reshape(-1, imgs.shape[-1]).astype(np.float64) / 255.0
    return x.mean(0).tolist(), x.std(0).tolist()


# ------------------------------------------------------------------ igrm loader
class DeviceLoader:
    """igrm.train's loader: uint8 set on the device, randperm, per-batch augmentation."""

    def __init__(self, imgs, labels, mean, std, batch, device, seed=0, prepad=False):
        self.prepad = prepad
        if prepad:
            # proposed variant: reflect-pad the uint8 set once (N, H+2p, W+2p, C) and crop
            # every batch with one uint8 gather (same crop distribution as batch_crop)
            t = torch.from_numpy(np.ascontiguousarray(imgs)).to(device).permute(0, 3, 1, 2)
            self.xp = (
                torch.cat([F.pad(c.float(), (PAD,) * 4, mode="reflect").to(torch.uint8) for c in torch.split(t, 4096)])
                .permute(0, 2, 3, 1)
                .contiguous()
            )
            self.H, self.W = imgs.shape[1], imgs.shape[2]
        else:
            self.x = to_device_uint8(imgs, device)
            self.xpad = reflect_pad_u8(self.x, PAD)  # igrm.train pads the set once
        self.y = torch.from_numpy(labels).to(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)
        self.batch = batch
        self.g_order = torch.Generator(device=device).manual_seed(seed)
        self.g_aug = torch.Generator(device=device).manual_seed(seed + 1)
        self.device = device

    def __len__(self):
        return len(self.y) // self.batch

    def __iter__(self):
        n = len(self) * self.batch
        order = torch.randperm(len(self.y), generator=self.g_order, device=self.device)[:n]
        for idx in torch.split(order, self.batch):
            if self.prepad:
                xb = self._prepadded_batch(idx)
            else:
                xb = augment_batch(
                    None,
                    AUGMENT,
                    self.g_aug,
                    self.mean,
                    self.std,
                    pad=PAD,
                    cutout_size=CUTOUT,
                    padded=self.xpad,
                    idx=idx,
                )
            yield xb.contiguous(memory_format=torch.channels_last), self.y[idx]

    def _prepadded_batch(self, idx):
        from igrm.batches import batch_cutout, batch_flip, normalize

        B, dev = len(idx), self.device
        off = torch.randint(0, 2 * PAD + 1, (2, B), generator=self.g_aug, device=dev)
        rows = off[0][:, None] + torch.arange(self.H, device=dev)[None, :]
        cols = off[1][:, None] + torch.arange(self.W, device=dev)[None, :]
        x = self.xp[idx[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        x = normalize(batch_flip(x, self.g_aug), self.mean, self.std)
        return batch_cutout(x, CUTOUT, self.g_aug)


# ------------------------------------------------------------------ torchvision loader
class Cutout:
    """Zero a size x size square (clipped) at a uniform random centre of a (C, H, W) tensor."""

    def __init__(self, size):
        self.size = size

    def __call__(self, x):
        _, H, W = x.shape
        cy, cx = int(torch.randint(0, H, ())), int(torch.randint(0, W, ()))
        y0, y1 = max(0, cy - self.size // 2), min(H, cy - self.size // 2 + self.size)
        x0, x1 = max(0, cx - self.size // 2), min(W, cx - self.size // 2 + self.size)
        x[:, y0:y1, x0:x1] = 0.0
        return x


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, imgs, labels, transform):
        self.imgs, self.labels, self.transform = imgs, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.imgs[i])), int(self.labels[i])


def torchvision_loader(imgs, labels, mean, std, batch, workers, device):
    from torchvision import transforms as T

    tf = T.Compose(
        [
            T.RandomCrop(32, padding=PAD, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
            Cutout(CUTOUT),
        ]
    )
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        PILDataset(imgs, labels, tf),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=g,
        persistent_workers=False,
    )


def to_device(batch, device):
    xb, yb = batch
    xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return xb, yb.to(device, non_blocking=True)


# ------------------------------------------------------------------ timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loaders(makers, device, repeats):
    """One epoch per loader, loaders interleaved within each repeat (the machine's load
    changes over minutes: interleaving spreads it over all loaders alike)."""
    times = {name: [] for name in makers}
    seen = {}
    for _ in range(repeats):
        for name, make in makers.items():
            sync(device)
            t0 = time.perf_counter()
            n = 0
            for xb, yb in make():
                n += len(yb)
            sync(device)
            times[name].append(time.perf_counter() - t0)
            seen[name] = n
    return {
        name: {
            "seconds": min(t),
            "seconds_all": t,
            "images": seen[name],
            "images_per_s": seen[name] / min(t),
            "images_per_s_median": seen[name] / float(np.median(t)),
        }
        for name, t in times.items()
    }


class Stepper:
    """ResNet-18 at ``width`` + SGD+M, fed by one loader; same init for every loader."""

    def __init__(self, make_iter, device, args, num_classes=10):
        torch.manual_seed(0)
        self.model = build_model("resnet18", num_classes, 3, args.width).to(
            device=device, memory_format=torch.channels_last
        )
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.bf16 = args.bf16 and device.type == "cuda"
        self.make_iter, self.device = make_iter, device
        self.it = iter(make_iter())

    def next_batch(self):
        try:
            return next(self.it)
        except StopIteration:  # new epoch (a DataLoader restarts its workers here)
            self.it = iter(self.make_iter())
            return next(self.it)

    def step(self):
        xb, yb = self.next_batch()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(xb)
        loss = F.cross_entropy(out.float(), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return len(yb)


def time_steps(makers, device, args):
    """``args.warmup`` steps per loader, then ``args.rounds`` rounds of ``args.steps``
    steps, loaders interleaved within each round; images/s per round."""
    steppers = {name: Stepper(make, device, args) for name, make in makers.items()}
    for st in steppers.values():
        for _ in range(args.warmup):
            st.step()
    sync(device)
    rates = {name: [] for name in steppers}
    for _ in range(args.rounds):
        for name, st in steppers.items():
            sync(device)
            t0 = time.perf_counter()
            n = sum(st.step() for _ in range(args.steps))
            sync(device)
            rates[name].append(n / (time.perf_counter() - t0))
    return {
        name: {
            "images_per_s": float(np.median(r)),
            "images_per_s_best": float(max(r)),
            "images_per_s_rounds": r,
            "steps_per_round": args.steps,
            "rounds": args.rounds,
        }
        for name, r in rates.items()
    }


# ------------------------------------------------------------------ machine
def cpu_model() -> str:
    """lscpu's model name ('unknown' without lscpu); also used by gpu_check.py."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def machine(device):
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "cpu_model": cpu_model(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast in the training step (CUDA only)")
    p.add_argument("--width", type=float, default=0.25, help="ResNet-18 width multiplier (paper: 1)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-loader", type=int, default=50_000, help="images for the loader-alone epoch")
    p.add_argument("--n-train", type=int, default=4096, help="images for the training-step part")
    p.add_argument("--steps", type=int, default=4, help="training steps per loader per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --steps steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="loader-alone epochs per loader, interleaved (best kept)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--no-prepad", action="store_true", help="skip the proposed pre-padded on-device variant")
    p.add_argument("--data", default=None, help="prepared dataset HDF5 instead of synthetic images")
    p.add_argument("--out", default=str(OUT / "bench_loader.json"))
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(
            f"--device {args.device}: CUDA is not available in this torch build/machine "
            f"(torch {torch.__version__}); run with --device cpu"
        )
    if args.bf16 and device.type != "cuda":
        print("note: --bf16 applies on CUDA only; ignored on CPU (as in igrm.train)", file=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    load_before = os.getloadavg()
    imgs, labels = load_images(args)
    mean, std = stats(imgs)
    tr_imgs, tr_labels = imgs[: args.n_train], labels[: args.n_train]

    def loaders(x, y):
        dev = DeviceLoader(x, y, mean, std, args.batch, device)
        out = {"igrm on-device": lambda: iter(dev)}
        if not args.no_prepad:
            dev2 = DeviceLoader(x, y, mean, std, args.batch, device, prepad=True)
            out["on-device, pre-padded NHWC (variant)"] = lambda: iter(dev2)
        for w in args.workers:
            dl = torchvision_loader(x, y, mean, std, args.batch, w, device)
            out[f"torchvision DataLoader, {w} workers"] = lambda dl=dl: (to_device(b, device) for b in dl)
        return out

    results = {name: {"loader": r} for name, r in time_loaders(loaders(imgs, labels), device, args.repeats).items()}
    for name, r in results.items():
        r = r["loader"]
        print(
            f"loader  {name:34s} {r['images_per_s']:10.0f} img/s best, {r['images_per_s_median']:10.0f} median "
            f"({r['images']} img/epoch, {args.repeats} epochs)",
            flush=True,
        )
    for name, r in time_steps(loaders(tr_imgs, tr_labels), device, args).items():
        results[name]["train_step"] = r
        print(
            f"step    {name:34s} {r['images_per_s']:10.1f} img/s median of {args.rounds} rounds "
            f"(best {r['images_per_s_best']:.1f})",
            flush=True,
        )
    load_after = os.getloadavg()

    ref = {w: results[f"torchvision DataLoader, {w} workers"] for w in args.workers}
    print()
    head = (
        "| loader | loader alone (img/s, best epoch) | train step (img/s, median round) | "
        + " | ".join(f"vs DL{w}: loader / step" for w in args.workers)
        + " |"
    )
    print(head)
    print("|" + "---|" * (3 + len(args.workers)))
    for name, r in results.items():
        cells = [f"{r['loader']['images_per_s']:.0f}", f"{r['train_step']['images_per_s']:.1f}"]
        for w in args.workers:
            cells.append(
                f"{r['loader']['images_per_s'] / ref[w]['loader']['images_per_s']:.2f}× / "
                f"{r['train_step']['images_per_s'] / ref[w]['train_step']['images_per_s']:.2f}×"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    info = machine(device)
    info["loadavg_before"], info["loadavg_after"] = load_before, load_after
    print(
        f"\n{info.get('gpu', info['cpu_model'])}, {info['nproc']} CPUs, torch threads {info['torch_threads']}, "
        f"load avg before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"args": vars(args), "machine": info, "augment": AUGMENT, "pad": PAD, "cutout": CUTOUT, "results": results},
            indent=2,
        )
    )
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
