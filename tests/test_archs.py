"""Other encoder checkpoints than BERT and MPNet (RoBERTa, XLM-R, ELECTRA, DistilBERT, ALBERT,
CamemBERT, DeBERTa-v2): a tiny random one saved on disk goes through the whole sweep as
``model.path`` (fine-tune, export, int8, score, time), random init builds each architecture
(its own family, never a BERT in its place), and layer dropping finds DistilBERT's layers."""

from __future__ import annotations

import copy

import pytest

from paretobert import preflight
from paretobert.config import Config, ConfigError, DropConfig, ModelConfig
from paretobert.pipeline import run_variant

SHAPE = dict(layers=2, hidden=32, heads=2, intermediate=64, max_position=128)


def _checkpoint(arch, tokenizer, root):
    import torch
    from transformers import AutoModel

    from paretobert.models.zoo import random_init_config

    torch.manual_seed(0)
    cfg = random_init_config(ModelConfig(name="x", arch=arch, **SHAPE), vocab_size=len(tokenizer),
                             pad_token_id=tokenizer.pad_token_id)
    AutoModel.from_config(cfg).save_pretrained(root)
    tokenizer.save_pretrained(root)  # a BERT vocabulary's tokenizer (emits token types) for every one
    return root


@pytest.mark.parametrize("arch", ["roberta", "xlm-roberta", "electra", "distilbert", "albert", "camembert",
                                  "deberta-v2"])
def test_a_checkpoint_of_another_encoder_runs_the_sweep(arch, tokenizer, variant_of, tmp_path):
    path = _checkpoint(arch, tokenizer, tmp_path / arch)
    model = ModelConfig(name=f"my-{arch}", arch=arch, path=str(path), **SHAPE)
    preflight.check(Config(model=model))  # config.json's model_type and shape agree with the preset
    drop = {"drop": DropConfig(strategy="top", keep=1)}
    for quant, extra in ((True, {}), (False, drop if arch == "distilbert" else {})):
        rec = run_variant(variant_of(model=model, weights="auto", quant=quant, **extra), out_dir=tmp_path / f"o{quant}",
                          cache_dir=tmp_path / "cache", progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["weights_source"].startswith("path:") and rec["onnx_max_abs_diff"] < 1e-3
        assert 0.0 <= rec["accuracy"] <= 1.0 and rec["latency_p50_ms"] > 0
    if arch == "distilbert":  # its layers are the transformer's, not an encoder's
        assert rec["train"]["drop"]["kept"] == [0] and rec["compression"] == "drop-top-1"
    with pytest.raises(ConfigError, match="model_type"):
        preflight.check(Config(model=ModelConfig(name="wrong", arch="bert", path=str(path), **SHAPE)))


@pytest.mark.parametrize("arch", ["mpnet", "roberta", "electra", "distilbert", "bert", "camembert", "deberta-v2"])
def test_random_init_builds_each_architecture_at_the_presets_shape(arch, tokenizer):
    from paretobert.models import Source, build_model
    from paretobert.models.drop import encoder_layers
    from paretobert.models.zoo import match_inputs

    m = build_model(Source("scratch"), ModelConfig(name="x", arch=arch, **SHAPE), num_labels=3, tokenizer=tokenizer,
                    cache_dir=None, seed=0)
    assert m.config.model_type == arch and len(encoder_layers(m)) == 2 and m.config.hidden_size == 32
    assert m.num_labels == 3
    tok = match_inputs(copy.deepcopy(tokenizer), m)  # the session's tokenizer is not touched
    assert ("token_type_ids" in tok.model_input_names) == (arch not in ("distilbert", "mpnet"))
