"""Borg §5 experiments on workload checkpoints, run through corral's own master and scheduler.

compaction (how small a cell holds the workload), segregate (separate
production and non-production cells), buckets (requests rounded up to powers
of two), reclaim (non-production work on reclaimed resources). See README.md.
"""
