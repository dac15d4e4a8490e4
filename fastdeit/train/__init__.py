"""The training step, loop, checkpoints and distributed set-up."""
