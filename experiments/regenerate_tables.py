"""Regenerate the committed experiment tables with today's columns, from their configs.

    python experiments/regenerate_tables.py [design-card-scratch livedoor compression]

The sweeps' result records (multirun/, not committed) are gone, so each committed
``results.csv`` row is matched to the :class:`~paretobert.variant.Variant` its experiment
config composes to (the same ``+experiment=NAME`` and overrides the Makefile / README ran),
by the variant's readable name (``variant_id`` without its hash: dataset, model, compression,
weights, precision, seq_len, exit, truncation, threads). Every axis column and the label then
come from that Variant (``Variant.axes()``, ``Variant.label()``); measured figures are copied
unchanged; the frontier files are recomputed from the table by the report code. A row whose
name no config composes to, or whose existing columns disagree with its Variant, stops the
script: nothing is guessed. With the records at hand, ``paretobert report`` regenerates the
same files from them instead.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from paretobert.__main__ import CONF_DIR, to_config
from paretobert.record import COLUMNS
from paretobert.report import write_tables
from paretobert.variant import Variant

HERE = Path(__file__).resolve().parent
LIVEDOOR = "dataset.path=../shared/data/ldcc-20140209.tar.gz"
# experiment dir -> the sweeps that made it (experiment name, extra overrides) and its report files
SPECS = {
    "design-card-scratch": {"sweeps": [("design-card-scratch", [])], "reports": [{}]},
    "livedoor": {"sweeps": [("livedoor", [LIVEDOOR]), ("livedoor-pretrained", [LIVEDOOR]),
                            ("livedoor-newvocab", [LIVEDOOR]), ("livedoor", [LIVEDOOR, "model=tfidf", "seq_len=100000"])],
                 "reports": [{}, {"exclude_models": ["tfidf"], "suffix": "-transformers"}]},
    "compression": {"sweeps": [("compression", [])],
                    "reports": [{"html": True}, {"group_by": "threads", "suffix": "-per-threads"}]},
}
CHECKED = ("dataset", "model", "weights", "quant", "seq_len", "truncation", "train_length", "threads")


def _variants(experiment: str, extra: list[str]) -> dict[str, Variant]:
    """Every variant of ``+experiment=NAME`` with ``extra`` overrides, by name."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+experiment={experiment}", *extra], return_hydra_config=True)
        params = {k: str(v).split(",") for k, v in OmegaConf.to_container(cfg.hydra.sweeper.params).items()}
        for o in extra:  # command-line overrides win over the experiment's sweep params
            params.pop(o.split("=", 1)[0], None)
        out = {}
        for combo in itertools.product(*params.values()):
            overrides = [f"+experiment={experiment}", *extra, *(f"{k}={v}" for k, v in zip(params, combo, strict=True))]
            c = compose(config_name="config", overrides=overrides)
            v = Variant.from_config(to_config(c))
            out[v.name] = v
    return out


def regenerate(name: str) -> None:
    spec, d = SPECS[name], HERE / name
    variants: dict[str, Variant] = {}
    for experiment, extra in spec["sweeps"]:
        variants.update(_variants(experiment, extra))
    old = pd.read_csv(d / "results.csv")
    rows = []
    for _, r in old.iterrows():
        vname = str(r["variant_id"])[:-7]
        v = variants.get(vname)
        if v is None:
            raise SystemExit(f"{name}: no config composes to {vname}")
        axes = v.axes()
        for col in CHECKED:
            if col in r.index and not pd.isna(r[col]) and str(r[col]) != str(axes[col]):
                raise SystemExit(f"{name}: {r['variant_id']}: {col}={r[col]} but its config says {axes[col]}")
        row = {c: (None if pd.isna(x) else x) for c, x in r.items()}
        row.update(axes, label=v.label(row.get("weights_source")), runtime_version=None)
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table.reindex(columns=[*COLUMNS, *[c for c in table.columns if c not in COLUMNS]])  # absent: empty
    labels_changed = int((old["label"] != table["label"]).sum())
    committed = set(p.name for p in d.iterdir())
    for report in spec["reports"]:
        df = table
        excl = report.get("exclude_models", [])
        if excl:
            df = df[~df["model"].isin(excl)].reset_index(drop=True)
        before = d / f"frontier{report.get('suffix', '')}.csv"
        old_front = set(pd.read_csv(before)["variant_id"]) if before.exists() else None
        out = write_tables(df, d, group_by=report.get("group_by"), exclude_models=excl,
                           suffix=report.get("suffix", ""), name=name, html=report.get("html", False))
        new_front = set(pd.read_csv(out["frontier"])["variant_id"])
        same = "same frontier" if old_front == new_front else f"frontier changed: {sorted(old_front ^ new_front)}"
        print(f"{name}: {out['results'].name} {len(df)} rows, {out['frontier'].name}: {same}")
    for p in d.iterdir():  # the report writes a results file per suffix; keep what was committed
        if p.name not in committed:
            p.unlink()
    print(f"{name}: {len(table)} rows regenerated, {labels_changed} label(s) changed")


if __name__ == "__main__":
    for n in sys.argv[1:] or list(SPECS):
        regenerate(n)
