"""Registry of the pipeline's tasks: the one place that maps a rule's ``params.task``
to the igrm function that does the work, with a uniform signature per kind:

- simulate: ``f(cfg: dict) -> (arrays: dict, attrs: dict)``  (one HDF5 file)
- tidy:     ``f(results: list[(arrays, attrs)], cfg) -> {output_name: DataFrame}``
- plot:     ``f(inputs: {name: DataFrame}, cfg, paths) -> None``
- table:    ``f(inputs, cfg) -> {output_stem: (DataFrame, caption)}``

Science lives in igrm.toy / igrm.orders; this module only adapts signatures.
"""

from __future__ import annotations

import importlib

import pandas as pd

from . import claims


def _concat(frames):
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------- tidy adapters
def tidy_two_factor(results, cfg=None):
    from . import toy

    return {"trajectories": _concat(toy.tidy_trajectories(a, t) for a, t in results),
            "finals": _concat(toy.tidy_finals(a, t) for a, t in results)}


def tidy_sharpness_sweep(results, cfg=None):
    from . import toy

    df = _concat(toy.tidy_sharpness(a, t) for a, t in results)
    return {"sweep": df.sort_values(["eta", "beta"]).reset_index(drop=True)}


def tidy_sigmoid(results, cfg=None):
    from . import toy

    return {"trajectories": _concat(toy.tidy_trajectories(a, t) for a, t in results),
            "flows": _concat(toy.tidy_flows(a, t) for a, t in results)}


def tidy_orders(results, cfg=None):
    from . import orders

    errors = _concat(orders.tidy_orders(a, t) for a, t in results)
    return {"errors": errors, "slopes": orders.fit_slopes(errors)}


def tidy_noise(results, cfg=None):
    from . import noise

    return noise.tidy_noise(results, cfg)


def tidy_train(results, cfg=None):
    from . import cifar

    return cifar.tidy_runs(results, spread_window=int((cfg or {}).get("spread_window", 5)))


# ---------------------------------------------------------------- plot adapters
def plot_two_factor(inputs, cfg, paths):
    from . import toy

    toy.plot_two_factor(inputs["trajectories"], cfg, paths, finals_df=inputs.get("finals"))


def plot_sharpness_sweep(inputs, cfg, paths):
    from . import toy

    toy.plot_sharpness(inputs["sweep"], paths)


def plot_sigmoid(inputs, cfg, paths):
    from . import toy

    toy.plot_sigmoid(inputs["trajectories"], inputs["flows"], cfg, paths)


def plot_orders_gdm(inputs, cfg, paths):
    from . import orders

    orders.plot_gdm_orders(inputs["errors"], inputs["slopes"], paths)


def plot_orders_sgdm(inputs, cfg, paths):
    from . import orders

    orders.plot_sgdm_orders(inputs["errors"], inputs["slopes"], paths)


def _cifar_plot(name):
    def plot(inputs, cfg, paths):
        from . import cifar

        getattr(cifar, name)(inputs, cfg, paths)

    plot.__name__ = name
    return plot


plot_acc_vs_beta = _cifar_plot("plot_acc_vs_beta")
plot_acc_vs_lr = _cifar_plot("plot_acc_vs_lr")
plot_curves = _cifar_plot("plot_curves")
plot_spread = _cifar_plot("plot_spread")
plot_explicit = _cifar_plot("plot_explicit")


def plot_noise_variance(inputs, cfg, paths):
    from . import noise

    noise.plot_variance_ratio(inputs, cfg, paths)


def plot_noise_regularisation(inputs, cfg, paths):
    from . import noise

    noise.plot_reg_ratio(inputs, cfg, paths)


# ---------------------------------------------------------------- table adapters
SHARPNESS_CAPTION = ("Two-factor toy E = ½(y − w1·w2·x)² at one effective learning rate: where each run "
                     "converges and the sharpness λ_max(∇²E) there. On the hyperbola of minima "
                     "λ_max = x²(w1² + w2²); smaller is flatter.")


def table_sharpness(inputs, cfg):
    df = inputs["finals"]
    return {"sharpness": (df, SHARPNESS_CAPTION)}


ORDERS_CAPTION = ("Fitted error orders: slope of log global error max_kh≤T ‖x_k − x(kh)‖ against log h, "
                  "with its standard error, for each comparison of the iterates with a modified flow "
                  "(docs/modified_flows.md).")


def table_orders(inputs, cfg):
    return {"orders_gdm_slopes": (inputs["gdm"], ORDERS_CAPTION + " GD+M vs flows (1), (2)."),
            "orders_sgdm_slopes": (inputs["sgdm"], ORDERS_CAPTION + " SGD+M vs its piecewise flow (RMS over streams).")}


def claims_toy(inputs, cfg):
    from . import toy

    df = toy.toy_claims(inputs["sweep"], inputs["finals"], {"claims": cfg})
    return {"toy": (df, "")}


def claims_orders(inputs, cfg):
    from . import orders

    df = orders.order_claims(inputs["slopes"], cfg)
    kind = "gdm" if df["id"].str.startswith("order/gdm").all() else "sgdm"
    return {f"orders_{kind}": (df, "")}


def _all_finals(inputs):
    return _concat([inputs[k] for k in ("beta", "lr", "explicit") if k in inputs]).drop_duplicates(
        subset=["run_id"]).reset_index(drop=True)


def table_cifar_final(inputs, cfg):
    from . import cifar

    return cifar.table_final({"finals": _all_finals(inputs)}, cfg)


def claims_cifar(inputs, cfg):
    from . import cifar

    df = cifar.cifar_claims({"finals": _all_finals(inputs), "epochs": inputs["beta_epochs"]}, cfg)
    return {"cifar": (df, "")}


def claims_noise(inputs, cfg):
    from . import noise

    return {"noise": (noise.noise_claims(inputs, cfg), "")}


CLAIMS_CAPTION = ("Every claim of the paper checked by the pipeline: the theory value, the measured value "
                  "with its uncertainty, the tolerance (fixed in the config before measuring) and the verdict.")


def table_claims(inputs, cfg):
    parts = inputs if isinstance(inputs, list) else list(inputs.values())
    return {"claims": (claims.combine(parts), CLAIMS_CAPTION)}


# ---------------------------------------------------------------- registry
TASKS = {
    "simulate": {
        "simulate_two_factor": "igrm.toy:simulate_two_factor",
        "sharpness_sweep": "igrm.toy:sharpness_sweep",
        "simulate_sigmoid": "igrm.toy:simulate_sigmoid",
        "gdm_error_orders": "igrm.orders:gdm_error_orders",
        "sgdm_error_orders": "igrm.orders:sgdm_error_orders",
    },
    "tidy": {n: f"igrm.pipeline:{n}" for n in
             ["tidy_two_factor", "tidy_sharpness_sweep", "tidy_sigmoid", "tidy_orders", "tidy_train", "tidy_noise"]},
    "plot": {n: f"igrm.pipeline:{n}" for n in
             ["plot_two_factor", "plot_sharpness_sweep", "plot_sigmoid", "plot_orders_gdm", "plot_orders_sgdm",
              "plot_acc_vs_beta", "plot_acc_vs_lr", "plot_curves", "plot_spread", "plot_explicit",
              "plot_noise_variance", "plot_noise_regularisation"]},
    "table": {n: f"igrm.pipeline:{n}" for n in
              ["table_sharpness", "table_orders", "claims_toy", "claims_orders", "table_claims",
               "table_cifar_final", "claims_cifar", "claims_noise"]},
}


def task(kind: str, name: str):
    """The function registered for ``name`` under ``kind``."""
    try:
        target = TASKS[kind][name]
    except KeyError:
        known = ", ".join(sorted(TASKS.get(kind, {})))
        raise KeyError(f"no {kind} task {name!r} (params.task of the rule); known: {known}") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
