"""AffineGAN: facial image-to-video translation by a hidden affine transformation."""

__version__ = "0.1.0"
