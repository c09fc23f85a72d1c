"""Helper for tests/test_train.py: run igrm.train.train in a child process.

usage: python _train_subprocess.py CFG_JSON DATA_NPZ CHECKPOINT_DIR OUT_NPZ SLEEP_S
The progress callback sleeps SLEEP_S after each epoch's line, so a parent can kill
the child between checkpoints.
"""
import json
import sys
import time

import numpy as np
import torch

from igrm.train import train

torch.set_num_threads(1)
cfg_json, data_npz, ckpt_dir, out_npz, sleep_s = sys.argv[1:6]
npz = np.load(data_npz)
data = {k.replace("__", "/"): npz[k] for k in npz.files}
data["attrs"] = {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3], "num_classes": 10}


def progress(msg):
    print(msg, flush=True)
    time.sleep(float(sleep_s))


arrays, attrs = train(json.loads(cfg_json), data, ckpt_dir, progress)
np.savez(out_npz, **arrays)
