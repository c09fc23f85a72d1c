"""Figures of the pipeline, one module per stage (toy, orders, cifar, noise); shared style
and atomic PDF+PNG output in :mod:`igrm.figures.style`. Plotting only: the numbers come
from the tidy tables (igrm.tidy) and the science modules."""
