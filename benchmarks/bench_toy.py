"""Benchmark: the paper's two toy figures, notebook-style vs igrm.

Baseline ("notebook"): what the authors' notebooks do, rewritten here (not copied):
  * one pure-Python scalar loop per trajectory, Python floats, np.exp per step for the
    sigmoid, histories appended to lists;
  * the gradient flow of E emulated with 1.5 million GD steps of lr 1e-5;
  * the regulariser flow x' = −∇‖∇E‖² emulated with 1e6 tiny steps of torch autograd
    (timed on a reduced number of steps and extrapolated linearly — said in the table).
igrm: numba heavy-ball kernels, all β in one batched call (igrm.heavyball.run), and
ODE flows by solve_ivp (igrm.flows.solve_flow / simulate_sigmoid).

Run:  .venv/bin/python benchmarks/bench_toy.py   (writes benchmarks/out/bench_toy.{json,md})
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BETAS = [0.0, 0.5, 0.8, 0.9]
ETA = 1e-2
X, Y = 1.0, 0.6
TWO_INIT, TWO_STEPS = (2.8, 3.4), 50_000
SIG_INIT, SIG_STEPS = (6.0, 2.0), 2_000
EFLOW_STEPS, EFLOW_LR = 1_500_000, 1e-5
RFLOW_STEPS, RFLOW_LR = 1_000_000, 1e-5
RFLOW_TIMED = 20_000  # torch steps actually timed, extrapolated to RFLOW_STEPS
OUT = Path(__file__).resolve().parent / "out"


# ------------------------------------------------------------------ notebook-style baseline


def nb_two_factor(w1, w2, h, beta, steps):
    hist1, hist2 = [w1], [w2]
    p1, p2 = w1, w2
    for _ in range(steps):
        r = w1 * w2 * X - Y
        g1, g2 = r * X * w2, r * X * w1
        n1 = w1 - h * g1 + beta * (w1 - p1)
        n2 = w2 - h * g2 + beta * (w2 - p2)
        p1, p2, w1, w2 = w1, w2, n1, n2
        hist1.append(w1)
        hist2.append(w2)
    return hist1, hist2


def nb_sigmoid(w1, w2, h, beta, steps):
    hist1, hist2 = [w1], [w2]
    p1, p2 = w1, w2
    for _ in range(steps):
        s = 1.0 / (1.0 + np.exp(-w2 * X))
        r = w1 * s - Y
        g1, g2 = r * s, r * w1 * X * s * (1.0 - s)
        n1 = w1 - h * g1 + beta * (w1 - p1)
        n2 = w2 - h * g2 + beta * (w2 - p2)
        p1, p2, w1, w2 = w1, w2, n1, n2
        hist1.append(w1)
        hist2.append(w2)
    return hist1, hist2


def nb_eflow(steps):
    # gradient flow of E emulated by GD with a tiny step
    return nb_sigmoid(SIG_INIT[0], SIG_INIT[1], EFLOW_LR, 0.0, steps)


def nb_rflow_torch(steps):
    import torch

    w = torch.tensor(SIG_INIT, dtype=torch.float64, requires_grad=True)
    hist = [w.detach().clone()]
    for _ in range(steps):
        loss = 0.5 * (Y - w[0] * torch.sigmoid(w[1] * X)) ** 2
        (g,) = torch.autograd.grad(loss, w, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), w)
        with torch.no_grad():
            w -= RFLOW_LR * gg
        hist.append(w.detach().clone())
    return hist


def timeit(fn, *a, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*a)
        best = min(best, time.perf_counter() - t)
    return best, out


# ------------------------------------------------------------------ igrm way


def igrm_trajectories():
    from igrm.heavyball import run
    from igrm.problems import SigmoidFactor, TwoFactor

    b = np.array(BETAS)
    h = ETA * (1 - b)
    r1 = run(TwoFactor(X, Y), np.tile(TWO_INIT, (4, 1)), h, b, TWO_STEPS)
    r2 = run(SigmoidFactor(X, Y), np.tile(SIG_INIT, (4, 1)), h, b, SIG_STEPS)
    return r1, r2


def igrm_two():
    from igrm.heavyball import run
    from igrm.problems import TwoFactor

    b = np.array(BETAS)
    return run(TwoFactor(X, Y), np.tile(TWO_INIT, (4, 1)), ETA * (1 - b), b, TWO_STEPS)


def igrm_sig():
    from igrm.heavyball import run
    from igrm.problems import SigmoidFactor

    b = np.array(BETAS)
    return run(SigmoidFactor(X, Y), np.tile(SIG_INIT, (4, 1)), ETA * (1 - b), b, SIG_STEPS)


def igrm_flows():
    from igrm.flows import solve_flow
    from igrm.problems import SigmoidFactor
    from igrm.toy import FLOW_TOL

    p = SigmoidFactor(X, Y)
    w0 = np.array([SIG_INIT])
    tE = EFLOW_STEPS * EFLOW_LR
    t = np.concatenate([[0.0], np.geomspace(tE * 1e-6, tE, 999)])
    fE = solve_flow(p.grad, w0, tE, t_eval=t, **FLOW_TOL)
    probe = solve_flow(p.grad_norm2_grad, w0, 10.0, gtol=1e-8, **FLOW_TOL)
    tR = probe["t"]
    fR = solve_flow(p.grad_norm2_grad, w0, tR, t_eval=np.linspace(0, tR, 1000), **FLOW_TOL)
    return fE, fR, probe


COLD_SNIPPET = """
import time, numpy as np
t = time.perf_counter()
from igrm.heavyball import run
from igrm.problems import TwoFactor, SigmoidFactor
t_import = time.perf_counter() - t
t = time.perf_counter()
run(TwoFactor(), np.zeros((1, 2)) + 1, 0.01, 0.0, 1)
run(SigmoidFactor(), np.zeros((1, 2)) + 1, 0.01, 0.0, 1)
print(t_import, time.perf_counter() - t)
"""


def cold_numba(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", COLD_SNIPPET], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def cpu_model():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    rows = []

    def add(task, baseline_s, igrm_s, note=""):
        rows.append(
            {
                "task": task,
                "notebook_s": baseline_s,
                "igrm_s": igrm_s,
                "speedup": baseline_s / igrm_s if igrm_s else float("nan"),
                "note": note,
            }
        )

    # numba compile: fresh cache dir (true compile) and cached (second process)
    with tempfile.TemporaryDirectory() as d:
        imp, compile_cold = cold_numba(d)
        _, compile_cached = cold_numba(d)

    # trajectories
    t_nb_two = sum(timeit(nb_two_factor, *TWO_INIT, ETA * (1 - b), b, TWO_STEPS)[0] for b in BETAS)
    t_nb_sig = sum(timeit(nb_sigmoid, *SIG_INIT, ETA * (1 - b), b, SIG_STEPS)[0] for b in BETAS)
    igrm_trajectories()  # warm
    t_ig, (r1, r2) = timeit(igrm_trajectories, repeat=5)
    t_ig1, _ = timeit(igrm_two, repeat=5)
    t_ig2, _ = timeit(igrm_sig, repeat=5)
    # check both give the same trajectories
    ref = nb_two_factor(*TWO_INIT, ETA * 0.1, 0.9, TWO_STEPS)
    err = max(abs(ref[0][-1] - r1.final[3, 0]), abs(ref[1][-1] - r1.final[3, 1]))
    ref = nb_sigmoid(*SIG_INIT, ETA * 0.1, 0.9, SIG_STEPS)
    err2 = max(abs(ref[0][-1] - r2.final[3, 0]), abs(ref[1][-1] - r2.final[3, 1]))
    add(
        "trajectories, both figures (4β×50k + 4β×2k steps, every step recorded)",
        t_nb_two + t_nb_sig,
        t_ig,
        "numba warm, one batched call per figure",
    )
    add("  two-factor trajectories (4β×50k)", t_nb_two, t_ig1, f"|Δ final| vs notebook loop = {err:.1e}")
    add("  sigmoid trajectories (4β×2k, np.exp per step)", t_nb_sig, t_ig2, f"|Δ final| vs notebook loop = {err2:.1e}")

    # flows
    t_e, hist = timeit(nb_eflow, EFLOW_STEPS)
    t_r_part, _ = timeit(nb_rflow_torch, RFLOW_TIMED)
    t_r = t_r_part * RFLOW_STEPS / RFLOW_TIMED
    igrm_flows()  # warm (imports)
    t_f, (fE, fR, probe) = timeit(igrm_flows, repeat=3)
    dE = float(np.hypot(hist[0][-1] - fE["w"][0, 0], hist[1][-1] - fE["w"][0, 1]))
    add(
        "sigmoid figure: E flow (1.5M GD steps lr 1e-5) + regulariser flow (1e6 torch steps)",
        t_e + t_r,
        t_f,
        f"torch part timed on {RFLOW_TIMED} steps ×{RFLOW_STEPS // RFLOW_TIMED} (linear); "
        f"E-flow end |Δ| vs 1.5M-step emulation = {dE:.1e}; regulariser flow run to "
        f"‖∇‖∇E‖²‖<1e-8 (t = {probe['t']:.1f})",
    )
    add("  of which: E flow only", t_e, np.nan)
    add("  of which: regulariser flow only (extrapolated)", t_r, np.nan)

    result = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "numba": {"import_s": imp, "first_call_fresh_cache_s": compile_cold, "first_call_cached_s": compile_cached},
        "rows": rows,
        "command": "python benchmarks/bench_toy.py",
    }
    lines = ["| task | notebook-style (s) | igrm (s) | speed-up | note |", "|---|---|---|---|---|"]
    for r in rows:
        ig = "" if not np.isfinite(r["igrm_s"]) else f"{r['igrm_s']:.4f}"
        sp = "" if not np.isfinite(r["speedup"]) else f"{r['speedup']:.0f}×"
        lines.append(f"| {r['task']} | {r['notebook_s']:.3f} | {ig} | {sp} | {r['note']} |")
    lines.append("")
    lines.append(
        f"numba kernels: first call with an empty cache (compile) {compile_cold:.2f} s; "
        f"first call in a new process with the on-disk cache {compile_cached:.2f} s "
        f"(import of igrm.heavyball {imp:.2f} s)."
    )
    lines.append(
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"Python {result['machine']['python']}."
    )
    md = "\n".join(lines)
    print(md)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_toy.json").write_text(json.dumps(result, indent=2, default=float))
    (OUT / "bench_toy.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
