"""notebooks/frontier.ipynb runs, offline, on a sweep of its own: tables, plot, pick, export,
predict (nbclient); the committed notebook carries no outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretobert import pipeline
from paretobert.config import ModelConfig
from paretobert.report import write_report

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "frontier.ipynb"
TWO = ModelConfig(name="micro", layers=2, hidden=32, heads=2, intermediate=64, max_position=128,
                  tokenizer="wordpiece", vocab_size=150)


def test_the_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_the_notebook_executes_on_a_sweep(tmp_path, variant_of, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cache, sweep = tmp_path / "cache", tmp_path / "sweep"
    recs = []
    for quant in (False, True):
        v = variant_of(model=TWO, quant=quant)
        recs.append(pipeline.run_variant(v, out_dir=sweep / v.variant_id, cache_dir=cache, progress=False))
        assert recs[-1]["status"] == "ok", recs[-1].get("traceback")
    write_report(sweep)
    for k, val in {"PARETOBERT_SWEEP": sweep, "PARETOBERT_CACHE": cache, "PARETOBERT_BUDGET_MS": "1e9",
                   "PARETOBERT_BUNDLE": tmp_path / "shipped", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(k, str(val))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "error" not in [o.get("output_type") for c in nb.cells for o in c.get("outputs", [])]
    assert any(r["variant_id"] in text for r in recs) and "ship it: paretobert export" in text
    assert (tmp_path / "shipped" / "bundle.json").exists()
