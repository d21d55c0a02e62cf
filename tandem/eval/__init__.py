"""Evaluation: datasets now; grading, runner, sweeps and reports build on it."""
