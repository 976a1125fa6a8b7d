"""train.precision: bf16 autocast fine-tuning where the CPU multiplies bf16 natively and faster
than fp32, fp32 elsewhere; resolved from the CPU's flags and a measured bf16/fp32 product
(every branch simulated), keyed, recorded."""

import json
import os

import pytest
import torch

from paretobert import env
from paretobert.config import ConfigError, TrainConfig
from paretobert.env import bf16_speedup, default_train_precision, resolve_variant
from paretobert.train import fine_tune, train_precision
from paretobert.variant import Variant

BF16_CPU = "avx2,fma,avx512f,avx512_vnni,avx512_bf16"
AMX_CPU = "avx2,fma,avx512f,avx512_vnni,amx_tile,amx_bf16,amx_int8"
AVX2_CPU = "avx2,fma"


@pytest.fixture(autouse=True)
def bf16_pays(monkeypatch):
    """Every test here runs on a simulated CPU whose bf16 products are 2.5x faster than fp32
    (the AMD EPYC's kind) unless it sets another speed-up."""
    monkeypatch.setenv("PARETOBERT_BF16_SPEEDUP", "2.5")


@pytest.fixture()
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("flags, speedup, want", [
    (BF16_CPU, "2.5", "bf16"), (AMX_CPU, "5.0", "bf16"),
    (BF16_CPU, "0.64", "fp32"),  # the Intel Xeon with AVX512-BF16 and no AMX: its bf16 products are slower
    (BF16_CPU, "1.1", "fp32"),  # faster, but not by the margin
    (AVX2_CPU, "2.5", "fp32"), ("avx2,fma,avx512f,avx512_vnni", "2.5", "fp32")])  # no bf16 units: flags first
def test_auto_follows_the_cpus_bf16_units_and_their_speed(monkeypatch, cpu_only, flags, speedup, want):
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", flags)
    monkeypatch.setenv("PARETOBERT_BF16_SPEEDUP", speedup)
    assert default_train_precision("auto") == default_train_precision("cpu") == want
    assert train_precision(TrainConfig()) == want
    # a set precision is never second-guessed
    assert train_precision(TrainConfig(precision="fp32")) == "fp32"
    assert train_precision(TrainConfig(precision="bf16")) == "bf16"


def test_auto_on_a_cuda_device_asks_the_device(monkeypatch):
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", AVX2_CPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_train_precision("auto") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert default_train_precision("cuda") == "fp32"
    # train.device=cpu trains on the CPU whatever GPU there is
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    assert default_train_precision("cpu") == "bf16"


def test_the_speedup_is_measured_only_where_there_are_bf16_units(monkeypatch):
    import functools

    monkeypatch.delenv("PARETOBERT_BF16_SPEEDUP")
    measured = []
    probe = functools.lru_cache(maxsize=1)(lambda: measured.append(1) or 0.637)
    monkeypatch.setattr(env, "_measured_bf16_speedup", probe)
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", AVX2_CPU)
    assert bf16_speedup() is None and measured == []
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    # a record made before anything asked for it says None, and measures nothing
    assert env.environment()["bf16_speedup"] is None and measured == []
    assert bf16_speedup() == 0.64 and bf16_speedup() == 0.64 and measured == [1]  # once a process
    assert env.environment()["bf16_speedup"] == 0.64  # recorded with every result after


def test_the_real_measurement_times_both_products_beside_builds_only(monkeypatch, tmp_path):
    from paretobert import schedule

    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "machine.lock"))
    speedup = env._time_bf16_products()
    assert isinstance(speedup, float) and 0.01 < speedup < 100
    with schedule.timing():  # inside this process's own timing it does not wait for itself
        assert env._time_bf16_products() > 0.01
    import contextlib

    held = []

    @contextlib.contextmanager
    def building():
        held.append("shared")
        yield 0.0

    monkeypatch.setattr(schedule, "building", building)
    env._time_bf16_products()
    assert held == ["shared"]  # another process's timing is never disturbed by it


@pytest.fixture
def probe(monkeypatch, tmp_path):
    """The machine's probe with scripted measurements (each call of the timing pops the next
    figure), a fresh machine lock, and a process that has not asked yet."""
    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(tmp_path / "machine.lock"))
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    monkeypatch.delenv("PARETOBERT_BF16_SPEEDUP", raising=False)
    figures: list[float] = []
    timed: list[float] = []
    monkeypatch.setattr(env, "_time_bf16_products", lambda: timed.append(figures[0]) or figures.pop(0))
    env._measured_bf16_speedup.cache_clear()
    yield figures, timed
    env._measured_bf16_speedup.cache_clear()


def test_the_figure_is_measured_once_a_machine_and_every_later_process_reads_it(probe):
    figures, timed = probe
    figures += [2.0, 0.61]  # what two processes of one sweep measured on one Xeon
    assert bf16_speedup() == 2.0 and default_train_precision("cpu") == "bf16"
    path = env.bf16_probe_path()
    assert path.parent == env.Path(os.environ["PARETOBERT_MACHINE_LOCK"]).parent and path.is_file()
    assert json.loads(path.read_text())["speedup"] == 2.0
    env._measured_bf16_speedup.cache_clear()  # the next process
    assert bf16_speedup() == 2.0 and default_train_precision("cpu") == "bf16" and timed == [2.0]
    # deleting the file measures again
    path.unlink()
    env._measured_bf16_speedup.cache_clear()
    assert bf16_speedup() == 0.61 and default_train_precision("cpu") == "fp32" and timed == [2.0, 0.61]


def test_two_processes_that_measured_at_once_both_take_the_first_published_figure(probe, monkeypatch):
    figures, timed = probe
    figures += [0.61]
    path = env.bf16_probe_path()
    real_time = env._time_bf16_products

    def measured_while_another_published():
        path.write_text(json.dumps({"speedup": 0.7}))  # the other process, between our read and our write
        return real_time()

    monkeypatch.setattr(env, "_time_bf16_products", measured_while_another_published)
    assert bf16_speedup() == 0.7 and timed == [0.61]
    assert json.loads(path.read_text())["speedup"] == 0.7
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no leftovers


def test_another_torch_or_thread_count_is_another_figure(probe, monkeypatch):
    figures, _ = probe
    first = env.bf16_probe_path()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert env.bf16_probe_path() != first
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert len({first, env.bf16_probe_path()}) == 2
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", AVX2_CPU + ",avx512_bf16")
    assert env.bf16_probe_path() != first


def test_an_unwritable_place_uses_this_process_figure_with_a_warning(probe, monkeypatch, tmp_path, caplog):
    figures, timed = probe
    figures += [0.64]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("PARETOBERT_MACHINE_LOCK", str(blocker / "machine.lock"))
    with caplog.at_level("WARNING", logger="paretobert.env"):
        assert bf16_speedup() == 0.64
    assert "could not keep this machine's bf16 figure" in caplog.text and timed == [0.64]


def test_a_corrupt_published_figure_is_a_one_line_error(probe):
    figures, _ = probe
    figures += [0.64]
    path = env.bf16_probe_path()
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match=r"unreadable right after it was written; delete it and run again$"):
        bf16_speedup()


def test_a_bad_simulated_speedup_is_one_line(monkeypatch):
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    monkeypatch.setenv("PARETOBERT_BF16_SPEEDUP", "fast")
    with pytest.raises(ValueError, match=r"^PARETOBERT_BF16_SPEEDUP='fast': not a number"):
        bf16_speedup()


def test_a_bad_precision_is_one_line():
    with pytest.raises(ConfigError, match=r"train.precision='fp16'; accepted: auto \| fp32 \| bf16"):
        TrainConfig(precision="fp16")


def test_resolved_before_the_hash_fp32_keeps_old_hashes_and_keys(monkeypatch, cpu_only, variant_of):
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", AVX2_CPU)
    fp32 = variant_of()
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    bf16 = variant_of()
    assert (fp32.train.precision, bf16.train.precision) == ("fp32", "bf16")
    assert fp32.quantize.reduce_range is True and bf16.quantize.reduce_range is False
    # fp32 is what every record before train.precision trained in: not hashed, old hashes and keys hold
    d = fp32.to_dict()
    del d["train"]["precision"]
    old = Variant.from_dict(d)
    assert old.train.precision == "fp32" and old.hash == fp32.hash
    key = dict(data_fingerprint="d", source="scratch", lr=1e-3)
    assert old.train_key(**key) == fp32.train_key(**key)
    # bf16 is another training: another checkpoint and another result
    same_q = resolve_variant(Variant.from_dict({**bf16.to_dict(), "quantize": fp32.to_dict()["quantize"]}))
    assert same_q.train.precision == "bf16"
    assert same_q.hash != fp32.hash and same_q.train_key(**key) != fp32.train_key(**key)
    # asked for explicitly, bf16 is the same variant as auto resolved to it
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    assert variant_of(train=TrainConfig(epochs=2, batch_size=8, max_length=64, lr=1e-3, precision="bf16")).hash \
        == bf16.hash


def test_tfidf_trains_no_network_so_its_precision_is_moot(monkeypatch, cpu_only, variant_of):
    from paretobert.config import ModelConfig

    tfidf = ModelConfig(name="tfidf", arch="tfidf", ngrams=2, max_position=100000)
    monkeypatch.setenv("PARETOBERT_CPU_FLAGS", BF16_CPU)
    a = variant_of(model=tfidf, seq_len=100000)
    b = Variant.from_dict({**a.to_dict(), "train": {**a.to_dict()["train"], "precision": "fp32"}})
    assert a.train.precision == "bf16" and a.hash == b.hash


def _dtypes_seen(model):
    seen = set()
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    return seen


def test_the_forward_runs_in_the_precision_and_the_weights_stay_fp32(tokenizer, corpus):
    from transformers import BertConfig, BertForSequenceClassification

    texts, labels, _ = corpus
    ends = {}
    for precision, matmul in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=128, num_labels=3))
        seen = _dtypes_seen(model)
        cfg = TrainConfig(epochs=8, batch_size=8, max_length=48, precision=precision, validation_size=0.0)
        stats = fine_tune(model, tokenizer, texts=texts, labels=labels, seed=0, lr=3e-3, cfg=cfg, progress=False)
        assert seen == {matmul}, precision
        assert stats["precision"] == precision
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert stats["loss_last"] < stats["loss_first"] - 0.2, precision  # it learns in either
        ends[precision] = stats["loss_last"]
    # mixed precision follows the same path (bf16 rounds the products, fp32 keeps the sums)
    assert ends["bf16"] == pytest.approx(ends["fp32"], abs=0.15)


def test_the_validation_passes_run_in_the_training_precision(tiny_model, tokenizer, corpus):
    from paretobert.train import Validation

    texts, labels, _ = corpus
    seen = _dtypes_seen(tiny_model)
    stats = fine_tune(tiny_model, tokenizer, texts=texts[::2], labels=labels[::2], seed=0, lr=3e-3,
                      cfg=TrainConfig(epochs=2, batch_size=8, max_length=48, precision="bf16"), progress=False,
                      validation=Validation(texts[1::2], labels[1::2], every=2, patience=50))
    assert seen == {torch.bfloat16}
    assert all(isinstance(p["val_accuracy"], float) and p["val_loss"] > 0 for p in stats["curve"])


def test_a_snapshot_of_another_precision_is_not_resumed(tmp_path, tiny_model, tokenizer, corpus, monkeypatch,
                                                        caplog):
    import paretobert.train as train

    monkeypatch.setattr(train, "SNAPSHOT_SECONDS", 0.0)
    snap = tmp_path / "s.resume.pt"
    texts, labels, _ = corpus
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}

    class Stop(Exception):
        pass

    real = train._save_snapshot

    def save_then_die(path, st):
        real(path, st)
        raise Stop

    monkeypatch.setattr(train, "_save_snapshot", save_then_die)
    with pytest.raises(Stop):
        fine_tune(tiny_model, tokenizer, texts=texts, labels=labels, seed=0, lr=1e-3, progress=False,
                  cfg=TrainConfig(epochs=1, batch_size=8, max_length=48, precision="bf16"), snapshot=snap)
    assert snap.is_file()
    monkeypatch.setattr(train, "_save_snapshot", real)
    tiny_model.load_state_dict(state)
    with caplog.at_level("WARNING"):
        stats = fine_tune(tiny_model, tokenizer, texts=texts, labels=labels, seed=0, lr=1e-3, progress=False,
                          cfg=TrainConfig(epochs=1, batch_size=8, max_length=48, precision="fp32"), snapshot=snap)
    assert "of another run: starting over" in caplog.text and stats["steps"] == 5


def test_the_results_row_says_the_training_precision():
    from paretobert.record import row_from_record as result_row

    rec = {"variant_id": "x", "train": {"device": "cpu", "precision": "bf16", "seconds": 1.0}}
    assert result_row(rec)["train_precision"] == "bf16"
    # a record from before train.precision trained in fp32; TF-IDF trains no network
    assert result_row({"variant_id": "x", "train": {"device": "cpu"}})["train_precision"] == "fp32"
    assert result_row({"variant_id": "x", "train": {"seconds": 1.0}})["train_precision"] is None
