"""Hydra composition for the commands that drive many variants themselves (``paretobert
search``, ``paretobert cluster``): the sweep's axes and one variant per combination, composed
exactly as ``python -m paretobert`` composes them. A Hydra boundary, like ``__main__``."""

from __future__ import annotations

import itertools

from paretobert.config import Config
from paretobert.variant import Variant

__all__ = ["error_line", "grid", "sweep_space", "variant_of"]


def sweep_space(experiment_overrides: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The sweep's axes (``hydra.sweeper.params`` of the composed config, command-line
    ``axis=a,b`` included) and the fixed overrides."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from paretobert.__main__ import CONF_DIR

    fixed, swept = [], {}
    for o in experiment_overrides:
        key, _, value = o.partition("=")
        if "," in value and not value.startswith(("[", "{")):
            swept[key] = value.split(",")
        else:
            fixed.append(o)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=fixed, return_hydra_config=True)
    node = cfg.hydra.sweeper.get("params")
    params = OmegaConf.to_container(node) if node is not None else {}
    space = {k: str(v).split(",") for k, v in params.items()}
    for k, v in space.items():
        if any(x.strip().startswith(("range(", "interval(", "choice(", "glob(")) for x in v):
            raise ValueError(f"sweep axis {k}={','.join(v)}: only comma-separated values can be swept here")
    # the command line wins over the experiment's axes, as in a Hydra multirun
    given = {o.partition("=")[0].lstrip("+~") for o in fixed}
    space = {k: v for k, v in space.items() if k.lstrip("+~") not in given}
    space.update(swept)
    return space, fixed


def variant_of(overrides: list[str], *, resolve: bool = True) -> tuple[Config, Variant]:
    """The validated config and Variant of one override list (checked against this machine
    by :func:`paretobert.preflight.check`); ``resolve``: with this CPU's defaults filled in
    (leave them open when another machine times it: it resolves them itself)."""
    from hydra import compose, initialize_config_dir

    from paretobert import preflight
    from paretobert.__main__ import CONF_DIR, to_config
    from paretobert.env import resolve_variant

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        conf = to_config(compose(config_name="config", overrides=overrides))
    preflight.check(conf)
    variant = Variant.from_config(conf)
    return conf, resolve_variant(variant) if resolve else variant


def grid(space: dict[str, list[str]], fixed: list[str]) -> list[list[str]]:
    """The override lists of every combination of ``space``, after ``fixed``."""
    return [[*fixed, *(f"{k}={v}" for k, v in zip(space, combo, strict=True))]
            for combo in itertools.product(*space.values())]


def error_line(e: BaseException) -> str:
    """The one line a command prints for a sweep it cannot compose: a bad value as it is said,
    any other error (Hydra's composition: a missing preset, bad override syntax) by its type
    and first line."""
    if isinstance(e, ValueError):  # ConfigError included
        return f"error: {e}"
    return f"error: {type(e).__name__}: {str(e).splitlines()[0]}"
