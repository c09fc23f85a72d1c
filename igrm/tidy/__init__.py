"""Tidy tables (one row per observation, CSV under results/tidy/) from result files, one
module per stage (toy, orders, runs, noise)."""
