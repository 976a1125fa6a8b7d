"""train.ema: an exponential moving average of the weights, evaluated, kept and shipped in place
of the raw weights; the raw weights' validation figures stay in the curve beside it (raw_*);
resumed exactly from a snapshot (keyed only when set: tests/test_variant.py). The loop itself:
tests/test_train.py."""

import copy

import pytest
import torch
from test_train import toy_run

from paretobert import train
from paretobert.train import WeightAverage


def test_the_average_follows_its_decay_and_swaps_in_and_out():
    m = torch.nn.Linear(3, 2)
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    m.register_parameter("frozen", frozen)
    start = m.weight.detach().clone()
    avg = WeightAverage(m, decay=0.5)
    assert avg.names == ["weight", "bias"]  # trainable parameters only
    with torch.no_grad():
        m.weight.add_(1.0)
    avg.update()  # decay min(0.5, 2/11) = 2/11: mostly the new weights
    want = start + (1.0 - 2 / 11)
    assert torch.allclose(avg.avg[0], want)
    for _ in range(50):
        avg.update()
    assert torch.allclose(avg.avg[0], start + 1.0, atol=1e-6)  # converges to constant weights
    with torch.no_grad():
        m.weight.add_(1.0)  # the raw weights move on; the average lags
    avg.update()
    raw = m.weight.detach().clone()
    with avg.swapped_in():
        assert torch.allclose(m.weight, start + 1.5, atol=1e-6)  # decay 0.5: half way
    assert torch.equal(m.weight, raw)
    with pytest.raises(RuntimeError), avg.swapped_in():
        raise RuntimeError("an evaluation that fails")
    assert torch.equal(m.weight, raw)  # restored after an error too


def _run(model, *, ema, restore="best", **kw):
    seen = []
    return toy_run(model, ema=ema, restore=restore, seen=seen, **kw), seen


def test_the_loop_scores_and_ships_the_average_and_keeps_the_raw_figures_beside_it(tiny_model):
    plain = copy.deepcopy(tiny_model)
    want, _ = _run(plain, ema=None, restore="significant")
    averaged = copy.deepcopy(tiny_model)
    got, seen = _run(averaged, ema=0.9, restore="significant")
    # the raw weights follow the very same training: their figures are the plain run's
    assert [p["raw_val_accuracy"] for p in got["curve"]] == [p["val_accuracy"] for p in want["curve"]]
    assert [p["raw_val_loss"] for p in got["curve"]] == pytest.approx([p["val_loss"] for p in want["curve"]])
    assert all("raw_items" not in p for p in got["curve"])
    assert len(seen) == 2 * len(got["curve"])  # each evaluation: raw weights, then the average
    assert not torch.equal(seen[-1], seen[-2])  # and the two are other weights
    # shipped: the average at the last evaluation, not the raw last weights
    assert got["kept"] == "last" and got["ema"] == 0.9 and "ema" not in want
    assert torch.equal(averaged.classifier.weight, seen[-1])
    assert not torch.equal(averaged.classifier.weight, plain.classifier.weight)
    assert got["val_accuracy"] == got["curve"][-1]["val_accuracy"]


def test_restoring_the_best_evaluation_restores_that_evaluations_average(tiny_model):
    model = copy.deepcopy(tiny_model)
    got, seen = _run(model, ema=0.9, restore="best")
    best = [i for i, p in enumerate(got["curve"]) if p["step"] == got["best_step"]][0]
    assert torch.equal(model.classifier.weight, seen[2 * best + 1])


def test_an_interrupted_fine_tune_with_an_average_resumes_it_exactly(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(train, "SNAPSHOT_SECONDS", 0.0)
    whole = copy.deepcopy(tiny_model)
    want, _ = _run(whole, ema=0.9)
    snap = tmp_path / ".key.resume.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(copy.deepcopy(tiny_model), ema=0.9, snapshot=snap, stop_at=6)
    again = copy.deepcopy(tiny_model)
    got, _ = _run(again, ema=0.9, snapshot=snap)
    for k, v in whole.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    drop = ("seconds",)
    assert [{k: v for k, v in p.items() if k not in drop} for p in got["curve"]] == \
           [{k: v for k, v in p.items() if k not in drop} for p in want["curve"]]
    with pytest.raises(KeyboardInterrupt):
        _run(copy.deepcopy(tiny_model), ema=0.9, snapshot=snap, stop_at=6)
    other, _ = _run(copy.deepcopy(tiny_model), ema=0.99, snapshot=snap)  # another decay: another run
    assert other["steps"] == 15 and not snap.exists()


def test_no_validation_split_still_ships_the_average(tiny_model):
    a, b = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    for model, ema in ((a, None), (b, 0.9)):
        assert "curve" not in toy_run(model, ema=ema, validate=False)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)
