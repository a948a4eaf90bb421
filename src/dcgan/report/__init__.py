"""Figures made of generated images (the latent-space figures of PAPER.md §6) and the HTML run report.

Grids, PNG and GIF writing live in dcgan.images; the loss figure with stats.jsonl in dcgan.training.stats.
"""
