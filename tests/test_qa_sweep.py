"""Extractive QA as a sweep task (dataset=squad | jsquad): config checks, the loader behind
``dataset=``, a tiny random reader through the whole pipeline (fine-tune, export with start/end
logits, int8, EM/F1 with intervals, timing), the record and the report."""

from __future__ import annotations

import json

import pytest
from conftest import make_squad

from paretobert import measure
from paretobert.config import (
    BenchConfig,
    Config,
    ConfigError,
    DatasetConfig,
    ExitConfig,
    ModelConfig,
    TrainConfig,
)
from paretobert.data import DataError, QASplit, load_split
from paretobert.env import resolve_variant
from paretobert.pipeline import format_result_line, run_variant
from paretobert.record import results_table
from paretobert.variant import Variant

MICRO = dict(name="micro", layers=1, hidden=32, heads=2, intermediate=64, max_position=128, tokenizer="wordpiece",
             vocab_size=150)


@pytest.fixture()
def squad_file(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(make_squad(n_articles=8, words=40)))
    return path


@pytest.fixture()
def qa_variant(squad_file):
    def make(**kw):
        cfg = Config(model=ModelConfig(**MICRO), dataset=DatasetConfig(name="squad", path=str(squad_file)),
                     train=TrainConfig(epochs=2, batch_size=8, max_length=64, lr=3e-3, validation_size=0.2),
                     bench=BenchConfig(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0, n_texts=4),
                     weights="scratch", seq_len=48, allow_network=False)
        for k, v in kw.items():
            setattr(cfg, k, v)
        cfg.__post_init__()
        return resolve_variant(Variant.from_config(cfg))

    measure.clear_split_cache()
    return make


def test_the_task_comes_from_the_dataset_and_what_qa_cannot_do_is_refused_in_one_line(squad_file):
    assert DatasetConfig(name="squad").task == "qa" and DatasetConfig(name="jsquad").task == "qa"
    assert DatasetConfig().task == "classification"
    ds = DatasetConfig(name="squad", path=str(squad_file))
    for kw, key in ((dict(exit=ExitConfig(threshold=0.2, pooling="cls")), "exit.pooling"),
                    (dict(truncation="head+tail"), "truncation"),
                    (dict(model=ModelConfig(name="tfidf", arch="tfidf")), "model")):
        with pytest.raises(ConfigError, match=key) as e:
            Config(model=kw.pop("model", ModelConfig(**MICRO)), dataset=ds, **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="dataset.max_train_articles"):
        DatasetConfig(name="bbc", max_train_articles=3)
    with pytest.raises(ConfigError, match="dataset.max_train"):
        DatasetConfig(name="squad", max_train=10)


def test_a_reader_trains_on_384_token_windows_unless_told_whatever_the_inference_length():
    from paretobert.compose import variant_of
    from paretobert.config import load_model_preset

    minilm, null = load_model_preset("minilm-l6"), TrainConfig(max_length=None)
    v = Variant.from_config(Config(model=minilm, dataset=DatasetConfig(name="squad", path="x.json"), seq_len=128,
                                   train=null))
    assert v.task == "qa" and v.train_length == 384 and v.axes()["task"] == "qa"
    assert Variant.from_config(Config(model=minilm, seq_len=128, train=null)).train_length == 128  # a classifier
    short = Variant.from_config(Config(model=ModelConfig(**MICRO), dataset=DatasetConfig(name="squad", path="x"),
                                       train=null))
    assert short.train_length == 128  # no longer than the model's positions
    # from the command line: the default train.max_length follows the dataset
    assert variant_of(["dataset=squad", "seq_len=128"], resolve=False)[1].train_length == 384
    assert variant_of(["dataset=squad", "train.max_length=256"], resolve=False)[1].train_length == 256
    assert variant_of(["seq_len=64"], resolve=False)[1].train_length == 128


def test_the_loader_behind_dataset_squad_and_jsquad(squad_file, tmp_path):
    split = load_split(DatasetConfig(name="squad", path=str(squad_file), test_size=0.25, max_test=5,
                                     max_train_articles=3))
    assert isinstance(split, QASplit) and split.language == "en" and len(split.test) == 5
    assert len(split.train_articles) == 3 and not set(split.train_articles) & set(split.test_articles)
    assert split.stats()["task"] == "qa"
    assert load_split(DatasetConfig(name="jsquad", path=str(squad_file))).language == "ja"
    with pytest.raises(DataError, match="offline needs dataset.path"):
        load_split(DatasetConfig(name="squad"), cache_dir=tmp_path, allow_network=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"title": "t"}]}')
    with pytest.raises(DataError, match="not SQuAD format"):
        load_split(DatasetConfig(name="squad", path=str(bad)))


def test_a_tiny_reader_runs_through_the_sweep_and_records_em_and_f1(tmp_path, qa_variant):
    cache = tmp_path / "cache"
    recs = {}
    for quant in (False, True):
        v = qa_variant(quant=quant)
        recs[quant] = rec = run_variant(v, out_dir=tmp_path / f"q{quant}", cache_dir=cache, progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["task"] == "qa" and rec["n_test"] == 12  # 2 of 8 articles held out, 6 questions each
        for name in ("exact_match", "f1"):
            assert 0.0 <= rec[f"{name}_ci_lo"] <= rec[name] <= rec[f"{name}_ci_hi"] <= 1.0
        assert rec["accuracy"] == rec["exact_match"] and rec["f1"] >= rec["exact_match"]
        assert rec["answer_in_window"] == 1.0 and rec["latency_p50_ms"] > 0 and rec["onnx_max_abs_diff"] < 1e-3
        assert rec["train"]["metric"] == "val_f1" and rec["train"]["n_validation_articles"] == 1
        assert "exact_match=" in format_result_line(rec)
    assert recs[True]["train_key"] == recs[False]["train_key"] and recs[True]["model_mb"] < recs[False]["model_mb"]
    # a shorter window reads the same reader (one checkpoint) and misses the answers past it
    short = run_variant(qa_variant(seq_len=32), out_dir=tmp_path / "short", cache_dir=cache, progress=False)
    assert short["train_key"] == recs[False]["train_key"] and short["train_cached"]
    assert short["answer_in_window"] < 1.0 and short["mean_tokens"] == 32
    again = run_variant(qa_variant(), out_dir=tmp_path / "qFalse", cache_dir=cache, progress=False)
    assert again["finished_at"] == recs[False]["finished_at"]  # done already: reused, not redone
    df = results_table([recs[False], recs[True], short])
    assert set(df["task"]) == {"qa"} and df["f1"].notna().all() and df["train_val_f1"].notna().all()
    from paretobert.report import markdown_table

    table = markdown_table(df, df.iloc[:1])
    assert "EM % [95% CI]" in table and "nan" not in table and table.count("| yes |") == 1


def test_layers_dropped_before_a_reader_fine_tunes(tmp_path, qa_variant):
    from paretobert.config import DropConfig

    rec = run_variant(qa_variant(model=ModelConfig(**{**MICRO, "layers": 2}), drop=DropConfig(strategy="top", keep=1)),
                      out_dir=tmp_path / "drop", cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    assert rec["train"]["drop"]["kept"] == [0] and rec["compression"] == "drop-top-1"


def test_a_qa_bundle_answers_what_the_sweep_evaluated(tmp_path, qa_variant, capsys):
    from paretobert import bundle
    from paretobert.store import read_json

    cache, out = tmp_path / "cache", tmp_path / "sweep"
    v = qa_variant(quant=True, seq_len=40)
    rec = run_variant(v, out_dir=out / v.variant_id, cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("traceback")
    b_dir = bundle.export_bundle(out, rec["variant_id"], tmp_path / "b", cache_dir=cache)
    b = bundle.load_bundle(b_dir)
    split = measure.split_of(v, cache, False)
    evaluated = read_json(cache / "eval" / rec["eval_key"] / "meta.json")["predictions"]
    answers = [b.answer(i.question, i.context) for i in split.test]
    assert [a["text"] for a in answers] == evaluated  # the bundle reads as the sweep scored
    for a, i in zip(answers, split.test, strict=True):
        assert a["text"] == "" or i.context[a["start"]:a["end"]] == a["text"]
    info = read_json(b_dir / bundle.BUNDLE_FILE)
    assert info["task"] == "qa" and info["measured"]["f1"] == rec["f1"] and "exact match" in (b_dir / "README.md").read_text()
    with pytest.raises(bundle.BundleError, match="--question"):
        b.predict(["a text"])
    item = split.test[0]
    assert bundle.predict_main([str(b_dir), "--question", item.question, "--context", item.context, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == evaluated[0]
    assert bundle.predict_main([str(b_dir), "--question", item.question]) == 2
    assert "--context" in capsys.readouterr().err


def test_a_reader_exits_early_through_the_sweep_and_its_bundle_answers_as_scored(tmp_path, qa_variant):
    from paretobert import bundle
    from paretobert.config import EvalConfig
    from paretobert.store import read_json

    cache, out = tmp_path / "cache", tmp_path / "sweep"
    two = ModelConfig(**{**MICRO, "layers": 2})
    plain = run_variant(qa_variant(model=two), out_dir=out / "plain", cache_dir=cache, progress=False)
    recs = {}
    for t in (0.0, 100.0):  # 0: the whole reader, segmented; 100 nats: above any entropy, all leave at layer 1
        v = qa_variant(model=two, exit=ExitConfig(threshold=t), eval=EvalConfig(batch_size=1))
        recs[t] = rec = run_variant(v, out_dir=out / v.variant_id, cache_dir=cache, progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["train_key"] == plain["train_key"] and rec["exit_max_abs_diff"] < 1e-3
        assert rec["exit_train"]["pooling"] == "token" and rec["exit_train"]["n_windows"] > 0
        assert sum(rec["exit_layer_counts"].values()) == rec["n_test"] and rec["latency_p50_ms"] > 0
    assert recs[0.0]["exit_layer_mean"] == 2.0 and recs[0.0]["exit_layer_counts"] == {"2": 12}
    assert recs[100.0]["exit_layer_mean"] == 1.0
    # the segmented whole reader answers as the one-graph reader does
    evaluated = {t: read_json(cache / "eval" / r["eval_key"] / "meta.json")["predictions"] for t, r in recs.items()}
    assert evaluated[0.0] == read_json(cache / "eval" / plain["eval_key"] / "meta.json")["predictions"]
    rec = recs[100.0]
    b = bundle.load_bundle(bundle.export_bundle(out, rec["variant_id"], tmp_path / "b", cache_dir=cache))
    split = measure.split_of(qa_variant(model=two), cache, False)
    answers = [b.answer(i.question, i.context) for i in split.test]
    assert [a["text"] for a in answers] == evaluated[100.0] and {a["exit_layer"] for a in answers} == {1}
    assert "early exit at a mean start/end entropy < 100.0" in (b.dir / "README.md").read_text()


def test_at_batch_1_each_window_runs_unpadded_as_deployed(squad_file):
    import numpy as np

    from paretobert.data.squad import load_qa_split
    from paretobert.models import train_wordpiece
    from paretobert.qa import prepare_features
    from paretobert.qa_model import answer

    split = load_qa_split(squad_file)
    items = split.test[:3]
    tok = train_wordpiece([i.context for i in split.train], vocab_size=120, max_length=128, lowercase=True)
    real = prepare_features(tok, items, max_length=128, windows="first").attention_mask.sum(axis=1)
    widths = []

    def run(feed):
        widths.append(feed["input_ids"].shape[1])
        assert feed["attention_mask"].all()  # nothing padded
        n = feed["input_ids"].shape[1]
        return np.zeros((1, n)), np.zeros((1, n))

    answers = answer(run, tok, items, seq_len=128, windows="first", batch_size=1)
    assert widths == list(real) and max(real) < 128
    assert all(a for a in answers.values())  # a span of the context, never a cut-off position


def test_span_distillation_matches_the_teachers_start_and_end_over_real_tokens():
    import copy

    import numpy as np
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from paretobert.qa import Features
    from paretobert.qa_model import SpanDistillation

    torch.manual_seed(0)
    teacher = BertForQuestionAnswering(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=32)).eval()
    ids = torch.randint(5, 40, (4, 12))
    mask = torch.ones_like(ids)
    mask[:2, 8:] = 0  # two windows padded
    feats = Features(ids.numpy(), mask.numpy(), None, [0, 1, 2, 3], [[None] * 12] * 4)
    kd = SpanDistillation(teacher=teacher, temperature=2.0, alpha=1.0)
    kd.targets(feats, "cpu", batch_size=3, progress=False)
    assert kd.start.shape == (4, 12)
    enc = {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([1, 2, 3, 4]),
           "end_positions": torch.tensor([2, 3, 4, 5])}
    idx = np.arange(4)
    twin = copy.deepcopy(teacher).eval()
    assert kd.loss(twin, enc, idx).item() == pytest.approx(0.0, abs=1e-5)  # the teacher itself: nothing to learn
    kd.start[:2, 8:] += 100.0  # what the teacher says of padding is not a target
    assert kd.loss(twin, enc, idx).item() == pytest.approx(0.0, abs=1e-5)
    other = BertForQuestionAnswering(teacher.config).eval()
    soft = kd.loss(other, enc, idx).item()
    with torch.no_grad():  # by hand: KL(teacher || student) over each window's real tokens, x T^2
        out = other(**enc)
        want = 0.0
        for s_logits, t_logits in ((out.start_logits, kd.start), (out.end_logits, kd.end)):
            for r in range(4):
                n = int(mask[r].sum())
                p, q = torch.softmax(t_logits[r, :n] / 2, -1), torch.log_softmax(s_logits[r, :n] / 2, -1)
                want += float((p * (p.log() - q)).sum()) * 2**2 / 4 / 2  # x T^2, over 4 windows, start and end
    assert soft == pytest.approx(want, rel=1e-4) and soft > 0
    kd.alpha = 0.0  # the hard start/end loss alone
    assert kd.loss(other, enc, idx).item() == pytest.approx(other(**enc).loss.item(), rel=1e-5)
    kd.alpha, kd.hidden_mse, kd.layer_map = 1.0, 1.0, [0, 1]
    assert kd.loss(other, enc, idx).item() > soft  # and the hidden states' distance on top


def test_one_reader_read_by_onnxruntime_and_openvino_gives_the_same_answers(tmp_path, qa_variant):
    """Another engine on the same fine-tuned reader: OpenVINO (fp32) reads the very checkpoint
    ONNX Runtime does and scores the same EM / F1; its int8 (NNCF) is scored too."""
    from paretobert.config import RuntimeConfig
    from paretobert.store import read_json

    cache = tmp_path / "cache"
    recs = {}
    for name, precision in (("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")):
        v = qa_variant(runtime=RuntimeConfig(name=name), precision=precision)
        recs[name, precision] = rec = run_variant(v, out_dir=tmp_path / f"{name}-{precision}", cache_dir=cache,
                                                  progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["task"] == "qa" and rec["runtime"] == name
    ort, ov = recs["onnxruntime", "fp32"], recs["openvino", "fp32"]
    assert ort["train_key"] == ov["train_key"] == recs["openvino", "int8"]["train_key"]
    preds = {k: read_json(cache / "eval" / r["eval_key"] / "meta.json")["predictions"] for k, r in recs.items()}
    same = sum(a == b for a, b in zip(preds["onnxruntime", "fp32"], preds["openvino", "fp32"], strict=True))
    assert same >= len(preds["onnxruntime", "fp32"]) - 1  # fp32 engines agree (one tie may break otherwise)
    assert abs(ort["f1"] - ov["f1"]) <= 1 / ort["n_test"] + 1e-9
