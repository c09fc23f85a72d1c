"""A complete igrm.train cfg for the tests (train() has no defaults: every key of
igrm.train.TRAIN_KEYS must be given). The keys the config's ``train`` section has take the
schema's defaults (schemas/config.schema.yaml); the run's own keys, which the pipeline
sets per run (rules/common.smk train_cfg), are set here."""
from igrm.pipeline.config import schema_defaults
from igrm.train import TRAIN_KEYS

RUN = dict(method="sgdm", beta=0.0, lr=0.1, lr_mode="effective", seed=0, fullbatch_subset=None,
           snapshot_epochs=[])


def train_cfg(**keys):
    """The complete cfg: schema defaults, then RUN, then ``keys``."""
    section = schema_defaults("train")
    cfg = {**{k: section[k] for k in TRAIN_KEYS if k in section}, **RUN, **keys}
    assert set(cfg) == set(TRAIN_KEYS), sorted(set(cfg) ^ set(TRAIN_KEYS))
    return cfg
