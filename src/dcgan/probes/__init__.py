"""Probes of the learned networks (PAPER.md §5–6): features, SVMs, memorization."""
