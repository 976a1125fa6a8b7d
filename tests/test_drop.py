"""Layer dropping: kept-layer indices per strategy (pure), contribution ranking, surgery."""

from __future__ import annotations

import pytest

from paretobert.models.drop import drop_layers, encoder_layers, kept_layers, layer_similarity


@pytest.mark.parametrize("strategy,keep,expected", [
    ("top", 8, [0, 1, 2, 3, 4, 5, 6, 7]),
    ("top", 6, [0, 1, 2, 3, 4, 5]),
    ("bottom", 8, [4, 5, 6, 7, 8, 9, 10, 11]),
    # 1-based even layers from the top: 12, 10, 8, 6 -> 0-based 11, 9, 7, 5
    ("even", 8, [0, 1, 2, 3, 4, 6, 8, 10]),
    ("odd", 8, [0, 1, 2, 3, 5, 7, 9, 11]),
    ("even", 6, [0, 2, 4, 6, 8, 10]),
    ("symmetric", 8, [0, 1, 2, 3, 8, 9, 10, 11]),
    ("symmetric", 6, [0, 1, 2, 9, 10, 11]),
    ("none", 12, list(range(12))),
    ("top", 12, list(range(12))),
])
def test_kept_layers_12(strategy, keep, expected):
    assert kept_layers(strategy, 12, keep) == expected


def test_kept_layers_odd_counts_and_errors():
    assert kept_layers("symmetric", 6, 3) == [0, 1, 5]
    assert kept_layers("top", 6, 1) == [0] and kept_layers("bottom", 6, 1) == [5]
    with pytest.raises(ValueError, match="at most 6"):
        kept_layers("even", 12, 5)
    with pytest.raises(ValueError, match="drop.keep=0"):
        kept_layers("top", 12, 0)
    with pytest.raises(ValueError, match="drop.keep=13"):
        kept_layers("top", 12, 13)
    with pytest.raises(ValueError, match="accepted: none \\| top"):
        kept_layers("random", 12, 6)
    with pytest.raises(ValueError, match="needs one similarity per layer"):
        kept_layers("contribution", 4, 2)
    with pytest.raises(ValueError, match="strategy=none"):
        kept_layers("none", 4, 2)


def test_contribution_drops_the_most_similar_layers():
    sim = [0.2, 0.9, 0.5, 0.95, 0.1, 0.9]
    assert kept_layers("contribution", 6, 3, similarity=sim) == [0, 2, 4]
    # ties go to the higher layer first
    assert kept_layers("contribution", 4, 3, similarity=[0.5, 0.5, 0.5, 0.5]) == [0, 1, 2]


def test_similarity_ranks_an_identity_layer_as_most_redundant(tiny_model, tokenizer, corpus):
    import torch

    # make layer 1 an exact identity on [CLS]: zero its attention output and FFN output weights,
    # so its output equals LayerNorm(input); with the input already normalised that is identity
    layer = encoder_layers(tiny_model)[1]
    with torch.no_grad():
        for lin in (layer.attention.output.dense, layer.output.dense):
            lin.weight.zero_()
            lin.bias.zero_()
    sim = layer_similarity(tiny_model, tokenizer, corpus[0][:6], max_length=32)
    assert len(sim) == 2 and sim[1] == pytest.approx(1.0, abs=1e-4) and sim[0] < sim[1]
    assert kept_layers("contribution", 2, 1, similarity=sim) == [0]


def test_drop_layers_keeps_a_working_model(tiny_model, tokenizer):
    import torch

    enc = tokenizer("sport team goal", return_tensors="pt")
    first = encoder_layers(tiny_model)[0]
    drop_layers(tiny_model, [0])
    assert tiny_model.config.num_hidden_layers == 1 and len(encoder_layers(tiny_model)) == 1
    assert encoder_layers(tiny_model)[0] is first
    with torch.no_grad():
        assert tiny_model(**enc).logits.shape == (1, 3)
