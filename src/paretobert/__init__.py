"""paretobert: which BERT size, quantization and sequence length give the best accuracy for
the CPU latency you can afford."""

__version__ = "0.1.0"
__all__ = ["__version__"]
