"""The generation road: load a model, encode a photo once, decode alphas, write frames,
videos and HTML."""
