"""Helper for tests/test_train.py: run igrm.train.train in a child process.

usage: python _train_subprocess.py CFG_JSON DATA_NPZ CHECKPOINT_DIR OUT_NPZ HOLD_EPOCH
After the progress line of epoch HOLD_EPOCH (written after that epoch's checkpoint) the
child prints HOLD and blocks until it is killed, so the parent kills it at a known point.
"""

import json
import signal
import sys

import numpy as np
import torch

from igrm.train import train

torch.set_num_threads(1)
cfg_json, data_npz, ckpt_dir, out_npz, hold_epoch = sys.argv[1:6]
npz = np.load(data_npz)
data = {k.replace("__", "/"): npz[k] for k in npz.files}
data["attrs"] = {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3], "num_classes": 10}


def progress(msg):
    print(msg, flush=True)
    if msg.startswith(f"epoch {int(hold_epoch)}/"):
        print("HOLD", flush=True)
        signal.pause()  # until the parent's SIGKILL


arrays, attrs = train(json.loads(cfg_json), data, ckpt_dir, progress)
np.savez(out_npz, **arrays)
