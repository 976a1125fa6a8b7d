"""paretobert: which BERT size, quantization and sequence length give the best accuracy for
the CPU latency you can afford."""

__version__ = "0.1.0"
__all__ = ["__version__", "load_bundle"]


def __getattr__(name: str):  # PEP 562: ``from paretobert import load_bundle`` imports nothing heavy
    if name == "load_bundle":
        from paretobert.bundle import load_bundle

        return load_bundle
    raise AttributeError(f"module 'paretobert' has no attribute {name!r}")
