"""The evaluation road: generate for clips with ground truth and score them."""
