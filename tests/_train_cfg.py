"""A complete igrm.train cfg for the tests (train() has no defaults: every key of
igrm.train.TRAIN_KEYS must be given), built as the pipeline builds a run's
(igrm.pipeline.targets.train_job_cfg) from the schema's defaults of the ``train`` section
(schemas/config.schema.yaml): an SGD+M run at beta 0, eta 0.1, seed 0, no noise points;
then ``keys`` replace entries."""

from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import train_job_cfg
from igrm.train import TRAIN_KEYS

#: the config the runs are built from: the train section's defaults, no run probed for noise
CONFIG = {"train": schema_defaults("train"), "noise": {"runs": [], "points": []}}


def train_cfg(**keys):
    """The complete cfg: train_job_cfg of the default run, then ``keys``."""
    cfg = {**train_job_cfg(CONFIG, "cifar10", "sgdm", 0.0, 0.1, 0), **keys}
    assert set(cfg) == set(TRAIN_KEYS), sorted(set(cfg) ^ set(TRAIN_KEYS))
    return cfg
