"""The sharpness of one trained run measured on the default 32 examples and on one training
batch (128 examples, the loss each SGD+M step differentiates; BN statistics over the batch),
train mode, Lanczos both ends (docs/mechanism.md, "The loss whose Hessian is measured").

usage: python benchmarks/sharpness_batch_size.py RESULT.h5 DATA.h5 [iters]
"""

import json
import sys
import time

import numpy as np
import torch

from igrm.batches import normalize
from igrm.data import load_prepared
from igrm.pipeline.io import read_h5
from igrm.sharpness import measure
from igrm.train import _null_ctx, chunk_loss_fns, resolve_config, select_data

result, data_path = sys.argv[1], sys.argv[2]
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 30
arrays, attrs = read_h5(result)
cfg = attrs["config"] if isinstance(attrs["config"], dict) else json.loads(attrs["config"])
c = resolve_config({k: v for k, v in cfg.items() if k != "dataset"})
data = load_prepared(data_path)
d = select_data(c, data, torch.device("cpu"))
from igrm.models import build_model  # noqa: E402

model = build_model(c["model"], d.num_classes, d.x_train.shape[1], float(c["width"]))
state = {
    k[len("final_state/") :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k.startswith("final_state/")
}
model.load_state_dict(state)
model.train()
params = [p for p in model.parameters() if p.requires_grad]
torch.set_num_threads(1)
for n in (32, 128):
    xs = normalize(d.x_train[:n], d.mean, d.std)
    ys = d.y_train[:n]
    fns = chunk_loss_fns(model, torch.split(xs, n), torch.split(ys, n), n, _null_ctx)
    t = time.process_time()
    m = measure(
        loss_fns=fns,
        params=params,
        buffers=list(model.buffers()),
        algorithm="lanczos",
        iters=iters,
        tol=1e-3,
        trace_probes=10,
        generator=torch.Generator().manual_seed(0),
    )
    e = m.ends
    print(
        f"n={n}: loss {m.loss:.4f}, lambda_max {e.top.value:.4g} (res {e.top.residual:.2g}), lambda_min "
        f"{e.bottom.value:.4g} (res {e.bottom.residual:.2g}), tr H {m.trace.value:.4g} ± {m.trace.se:.2g}, "
        f"|grad E|^2 {m.grad_norm_sq:.4g}, {e.top.iters} products, cpu {time.process_time() - t:.1f} s"
    )
