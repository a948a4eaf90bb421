"""Training: the loop, the losses, checkpoints that hold the whole state."""
