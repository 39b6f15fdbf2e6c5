"""The paper: the two-stream generator, the discriminators, the losses, intensity inference and
the training step; nothing here knows of files, flags or the loop."""
