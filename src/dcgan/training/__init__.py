"""Training: the loop, the trainer and its step, the run folder, stats, checkpoints that hold the whole state, and
the supervised loop the classifiers use."""
