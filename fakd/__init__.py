"""fakd: a study kit for Feature-Affinity based Knowledge Distillation in image super-resolution."""

__version__ = "0.1.0"
