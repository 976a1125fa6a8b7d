"""Entry point: ``python -m paretobert [-m] key=value ...`` (Hydra).

Thin by design: compose and validate the config (values: pure; this machine and its disk:
:mod:`paretobert.preflight`), build a :class:`Variant`, call
:func:`paretobert.pipeline.run_variant`, print one result line. The Hydra boundary: nothing
below this module (and the report callback) imports Hydra or OmegaConf.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from paretobert import preflight
from paretobert.cli import COMMANDS
from paretobert.cli import main as tools
from paretobert.config import (
    QA_TRAIN_LENGTH,
    BenchConfig,
    Config,
    ConfigError,
    DatasetConfig,
    ModelConfig,
    RuntimeConfig,
    TrainConfig,
    task_of,
)
from paretobert.env import resolve_variant
from paretobert.pipeline import format_result_line, run_variant
from paretobert.store import atomic_write_json
from paretobert.train import Interrupted
from paretobert.variant import Variant, content_hash

log = logging.getLogger("paretobert")

CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped inside the package (conf/ in the repo links here)


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (the YAML files under conf/ extend them)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for group, node in (("model", ModelConfig), ("dataset", DatasetConfig), ("train", TrainConfig),
                        ("runtime", RuntimeConfig), ("bench", BenchConfig)):
        cs.store(group=group, name=f"{group}_schema", node=node)


def to_config(cfg: Any) -> Config:
    """Validated :class:`Config` from a composed DictConfig (raises :class:`ConfigError`).
    Pure: the checks against this machine are :func:`paretobert.preflight.check`."""
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except ConfigError:
        raise
    except Exception as e:  # omegaconf wraps errors raised in __post_init__
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(str(e).splitlines()[0]) from e


def _variant_id(*, _root_: DictConfig) -> str:
    """Resolver ``${variant_id:}``: the job directory name derived from the variant."""
    try:
        body = OmegaConf.create({
            k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v
            for k, v in ((k, _root_[k]) for k in _root_ if k != "hydra")
        })
        conf = to_config(OmegaConf.merge(OmegaConf.structured(Config), body))
        return resolve_variant(Variant.from_config(conf)).variant_id  # as run_variant will name it
    except Exception:  # noqa: BLE001 - an invalid config is reported by the job itself
        # one directory per invalid job, so no failure overwrites another
        try:
            raw = OmegaConf.to_container(_root_, resolve=False)
            raw.pop("hydra", None)
            tag = content_hash(json.loads(json.dumps(raw, default=str)))[:8]
        except Exception:  # noqa: BLE001
            tag = "unreadable"
        return f"invalid-config-{tag}"


def _train_length_for(dataset: str) -> int:
    """Resolver ``${train_length_for:${dataset.name}}``: train.max_length's default, 128 tokens
    for a classifier and 384-token windows for a QA reader (one reader for every seq_len)."""
    return QA_TRAIN_LENGTH if task_of(dataset) == "qa" else TrainConfig().max_length


register_configs()
OmegaConf.register_new_resolver("variant_id", _variant_id, replace=True)
OmegaConf.register_new_resolver("train_length_for", _train_length_for, replace=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        conf = to_config(cfg)
        preflight.check(conf)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if not multirun:
            sys.exit(2)
        atomic_write_json(out_dir / "result.json", {
            "variant_id": out_dir.name, "status": "failed", "error": f"ConfigError: {e}",
            "overrides": list(hc.overrides.task),
        })
        return
    variant = Variant.from_config(conf)  # run_variant resolves this CPU's defaults
    rec = run_variant(variant, out_dir=out_dir, cache_dir=Path(conf.cache_dir).expanduser(),
                      force=conf.force, allow_network=conf.allow_network)
    print(format_result_line(rec), flush=True)
    if rec["status"] != "ok" and not multirun:
        sys.exit(1)


def interrupted_line(e: KeyboardInterrupt) -> str:
    """The one line a sweep stopped by Ctrl-C (or SIGTERM in a fine-tune) ends with."""
    if isinstance(e, Interrupted):  # a fine-tune's own message says where its state is saved
        return f"interrupted: {e}"
    return ("interrupted: SIGINT (Ctrl-C); nothing half-written is trusted: re-run the same command to go on "
            "(finished variants are reused)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:  # python -m paretobert retime ... = paretobert retime ...
        raise SystemExit(tools())
    try:
        main()
    except KeyboardInterrupt as e:
        print(interrupted_line(e), file=sys.stderr)
        raise SystemExit(130) from None
