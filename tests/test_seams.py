"""The seams hold: no module reaches into another's private helpers, nothing below the entry
point imports Hydra, the record is declared once, and records load on any machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from paretobert import pipeline, record
from paretobert.compare import compare_tables
from paretobert.config import RuntimeConfig
from paretobert.record import COLUMNS, FIELDS, NESTED, results_table
from paretobert.retime import variant_from_dict
from paretobert.variant import Variant

REPO = Path(__file__).resolve().parents[1]


def test_no_private_imports_across_modules():
    pattern = re.compile(r"from paretobert(\.\w+)* import \(?\s*_\w+")
    offenders = [f"{p.relative_to(REPO)}: {m.group(0)}" for d in ("src", "tests", "experiments", "benchmarks")
                 for p in (REPO / d).rglob("*.py") for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders


def test_nothing_below_the_entry_point_imports_hydra():
    code = ("import sys, paretobert.pipeline, paretobert.measure, paretobert.stages, paretobert.record, "
            "paretobert.report, paretobert.retime, paretobert.compare, paretobert.preflight, paretobert.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_result_key_is_declared_and_every_axis_is_a_column(tmp_path, variant_of):
    rec = pipeline.run_variant(variant_of(quant=True), out_dir=tmp_path / "j", cache_dir=tmp_path / "c",
                               progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    undeclared = set(rec) - set(COLUMNS) - set(NESTED)
    assert not undeclared, f"declare these in paretobert.record: {sorted(undeclared)}"
    row = results_table([rec]).iloc[0]
    for col in ("runtime", "precision", "drop_strategy", "drop_keep", "distill_teacher", "distill_layers",
                "exit_threshold", "compression", "seq_len", "threads", "quant"):
        assert col in row.index
    assert (row["runtime"], row["precision"], row["drop_strategy"], row["compression"]) == (
        "onnxruntime", "int8-dynamic", "none", "none")
    assert row["runtime_version"] and row["label"] == "micro[scratch] int8 s32"
    units = {f.name: f.unit for f in FIELDS}
    assert all(units[c] == "ms" for c in COLUMNS if c.endswith("_ms"))
    assert all(units[c] == "MB" for c in COLUMNS if c.endswith("_mb"))
    assert record.HOVER_FIELDS[0] == "variant_id" and "accuracy" in record.NUMERIC_COLUMNS


def test_a_record_from_a_bigger_machine_rebuilds_here(tmp_path, variant_of):
    """runtime.threads above this machine's cores: the retime / compare / report paths load it."""
    many = (os.cpu_count() or 1) + 14
    v = variant_of(runtime=RuntimeConfig(threads=many))
    rec = {"variant_id": v.variant_id, "hash": v.hash, "status": "ok", "variant": json.loads(json.dumps(v.to_dict())),
           "accuracy": 0.9, "latency_p50_ms": 5.0, "weights_source": "scratch", "n_test": 100,
           "environment": {"machine_id": "big", "cpu_count": many}}
    assert variant_from_dict(rec["variant"]) == v and Variant.from_dict(rec["variant"]).runtime.threads == many
    table = results_table([rec])
    assert table.loc[0, "threads"] == many and table.loc[0, "label"].endswith(f"t{many}")
    moved = compare_tables(table, table)
    assert moved["moved"].tolist() == ["stayed"]


def test_axis_columns_for_compression_arms(variant_of):
    from paretobert.config import DistillConfig, DropConfig, ExitConfig, ModelConfig

    two = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                      tokenizer="wordpiece", vocab_size=150)
    rows = pd.DataFrame([v.axes() for v in (
        variant_of(model=two, drop=DropConfig(strategy="top", keep=1)),
        variant_of(model=two, distill=DistillConfig(teacher="micro", layers=[0])),
        variant_of(model=two, exit=ExitConfig(threshold=0.2)),
    )])
    assert rows["compression"].tolist() == ["drop-top-1", "kd-0", "exit-0.2"]
    assert rows["drop_keep"].tolist()[0] == 1 and rows["distill_layers"].tolist()[1] == "0"
    assert rows["exit_threshold"].tolist()[2] == 0.2


def test_a_record_from_before_a_new_setting_reads_as_it_ran(variant_of):
    """exit.pooling is mean by default now; a record written before it existed had [CLS]
    off-ramps: it reads back as cls, with the same hash and segments key as then."""
    from paretobert.config import ExitConfig, ModelConfig

    two = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                      tokenizer="wordpiece", vocab_size=150)
    mean = variant_of(model=two, exit=ExitConfig(threshold=0.2))
    cls = variant_of(model=two, exit=ExitConfig(threshold=0.2, pooling="cls"))
    assert mean.exit.pooling == "mean" and mean.hash != cls.hash
    assert mean.exit_key(train_key="k") != cls.exit_key(train_key="k")
    old = json.loads(json.dumps(cls.to_dict()))
    del old["exit"]["pooling"]
    back = Variant.from_dict(old)
    assert back == cls and back.hash == cls.hash and back.exit_key(train_key="k") == cls.exit_key(train_key="k")
    assert back.label().endswith("exit0.2cls") and mean.label().endswith("exit0.2")
    # without early exit the pooling is moot: the hash is the one it always had
    assert variant_of(exit=ExitConfig(pooling="mean")).hash == variant_of(exit=ExitConfig(pooling="cls")).hash
