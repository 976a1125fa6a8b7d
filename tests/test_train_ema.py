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


def _stepped(avg, model, values):
    """Set the model's weight to each value in turn, one average update after each."""
    for v in values:
        with torch.no_grad():
            model.weight.fill_(v)
        avg.update()


@pytest.mark.parametrize("decay", [0.5, 0.9])
def test_the_bias_corrected_average_is_the_normalised_exponential_average_of_every_update(decay):
    m = torch.nn.Linear(1, 1, bias=False)
    avg = WeightAverage(m, decay=decay, correction="bias")
    values = [3.0, -1.0, 4.0, 1.0, 5.0]
    _stepped(avg, m, values)
    w = [decay ** (len(values) - 1 - i) for i in range(len(values))]  # the newest weighs 1
    want = sum(wi * v for wi, v in zip(w, values, strict=True)) / sum(w)
    assert avg.avg[0].item() == pytest.approx(want)
    # no cap: the first update is the weights themselves, not a mix with the initial weights
    first = WeightAverage(m, decay=decay, correction="bias")
    _stepped(first, m, [7.0])
    assert first.avg[0].item() == 7.0


def test_decay_one_is_the_uniform_average_from_its_start():
    m = torch.nn.Linear(1, 1, bias=False)
    values = [10.0, 20.0, 1.0, 2.0, 6.0]
    uniform = WeightAverage(m, decay=1.0, correction="bias")
    _stepped(uniform, m, values)
    assert uniform.avg[0].item() == pytest.approx(sum(values) / 5)
    late = WeightAverage(m, decay=1.0, correction="bias", start=2)
    _stepped(late, m, values[:2])
    assert late.avg[0].item() == 20.0  # before its start: the raw weights
    _stepped(late, m, values[2:])
    assert late.avg[0].item() == pytest.approx((1.0 + 2.0 + 6.0) / 3)  # the updates after the start only
    # the capped average (train.ema) is untouched by the new modes: the first update's weight is 1 - 2/11
    capped = WeightAverage(m, decay=0.5)
    assert capped.weight(1) == pytest.approx(1 - 2 / 11) and capped.weight(100) == 0.5
    # a start delays the cap's warm-up too: the first update after it is the cap's first
    assert WeightAverage(m, decay=0.5, start=10).weight(11) == pytest.approx(1 - 2 / 11)


@pytest.mark.parametrize("kw", [{"decay": 1.0}, {"decay": 0.0, "correction": "bias"}, {"decay": 0.9, "correction": "x"},
                                {"decay": 1.5, "correction": "bias"}])
def test_a_bad_average_is_refused_in_one_line(kw):
    with pytest.raises(ValueError, match="WeightAverage"):
        WeightAverage(torch.nn.Linear(1, 1), **kw)


def test_swapping_the_average_in_inside_an_autocast_block_scores_the_average(tiny_model):
    """torch's autocast caches the bf16 cast of each weight for the rest of its block: the raw
    weights scored first, then the average swapped in in place, must give the average's own
    logits, not the raw weights' cached matrices (train_loop scores both in one block)."""
    m = copy.deepcopy(tiny_model)
    avg = WeightAverage(m, decay=0.5)
    with torch.no_grad():
        for a in avg.avg:
            a.add_(torch.randn_like(a) * 0.5)  # an average far from the raw weights
    x = torch.randint(5, 100, (4, 12), generator=torch.Generator().manual_seed(0))
    averaged = copy.deepcopy(m)  # the average in other tensors: no cast of them is cached
    with torch.no_grad():
        for p, a in zip((p for p in averaged.parameters() if p.requires_grad), avg.avg, strict=True):
            p.copy_(a)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = averaged(input_ids=x).logits
        raw = m(input_ids=x).logits
        with avg.swapped_in():
            got = m(input_ids=x).logits
        again = m(input_ids=x).logits
    assert not torch.equal(raw, want)
    assert torch.equal(got, want)  # the average's matrices, not the raw ones' cached casts
    assert torch.equal(again, raw)  # and the raw weights' again after


def test_the_loop_scores_the_average_it_ships_under_bf16(tiny_model):
    """Under train.precision=bf16 the average's figures in the curve are the shipped average's
    own: rescored in a fresh autocast block they are the same."""
    model = copy.deepcopy(tiny_model)
    got, _ = _run(model, ema=0.9, restore="significant", precision="bf16")
    assert got["kept"] == "last"
    g = torch.Generator().manual_seed(0)  # toy_run's validation texts: its first 8
    ids, y = torch.randint(5, 100, (40, 12), generator=g), torch.randint(0, 3, (40,), generator=g)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        loss = float(model(input_ids=ids[:8], labels=y[:8]).loss)
    assert loss == got["curve"][-1]["val_loss"]
    assert got["curve"][-1]["val_loss"] != got["curve"][-1]["raw_val_loss"]


def test_the_loop_keeps_a_bias_corrected_average_that_starts_late(tiny_model):
    """train.ema_correction=bias with ema 1 is the uniform average of the steps after
    train.ema_start's share of the budget: started at the last step it is the raw last weights;
    from the first step on, another model; both say so in the statistics."""
    plain = copy.deepcopy(tiny_model)
    want, _ = _run(plain, ema=None, restore="significant")
    late = copy.deepcopy(tiny_model)
    got, _ = _run(late, ema=1.0, ema_correction="bias", ema_start=0.99, restore="significant")  # 15 steps: starts at 15
    assert got["kept"] == "last" and got["ema_correction"] == "bias" and got["ema_start"] == 0.99
    for (name, p), q in zip(late.named_parameters(), plain.parameters(), strict=True):
        assert torch.equal(p, q), name  # nothing averaged yet: the raw last weights
    whole = copy.deepcopy(tiny_model)
    uniform, _ = _run(whole, ema=1.0, ema_correction="bias", restore="significant")
    assert "ema_start" not in uniform
    assert not torch.equal(whole.classifier.weight, plain.classifier.weight)
    assert [p["raw_val_loss"] for p in uniform["curve"]] == pytest.approx([p["val_loss"] for p in want["curve"]])
