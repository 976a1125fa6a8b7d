import numpy as np
import onnx
import pytest

from paretobert.config import QuantizeConfig
from paretobert.evaluate import encode
from paretobert.export import check_onnx, export_onnx, fuse_onnx
from paretobert.quantize import quantize_onnx
from paretobert.runtimes import make_session
from paretobert.store import model_bytes


@pytest.fixture()
def exported(tmp_path, tiny_model, tokenizer):
    raw = tmp_path / "model.onnx"
    names = export_onnx(tiny_model, tokenizer, raw)
    return raw, names


def test_export_dynamic_axes_and_matches_torch(exported, tiny_model, tokenizer, corpus):
    raw, names = exported
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    graph = onnx.load(str(raw)).graph
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    assert check_onnx(raw, tiny_model, tokenizer, corpus[0][:4], max_length=64) < 1e-4
    # batch of 3 with padding through ORT equals three batch-1 runs
    sess, create_ms = make_session(raw, threads=1)
    assert create_ms > 0
    feeds = encode(tokenizer, corpus[0][:3], seq_len=32, names=names)
    single = np.concatenate([sess.run(None, f)[0] for f in feeds])
    width = max(f["input_ids"].shape[1] for f in feeds)
    batch = {n: np.stack([np.pad(f[n][0], (0, width - f[n].shape[1])) for f in feeds]) for n in names}
    assert np.allclose(sess.run(None, batch)[0], single, atol=1e-4)


def test_fusion_finds_attention_and_stays_exact(exported, tiny_model, tokenizer, corpus, tmp_path):
    raw, _ = exported
    fused = tmp_path / "model.fused.onnx"
    stats = fuse_onnx(raw, fused, num_heads=2, hidden_size=32)
    assert stats.get("Attention") == 2 and stats.get("SkipLayerNormalization", 0) >= 2
    assert check_onnx(fused, tiny_model, tokenizer, corpus[0][:4], max_length=64) < 1e-4


@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_runs_close_to_fp32_and_is_smaller(exported, tiny_model, tokenizer, corpus, tmp_path, per_channel):
    raw, _ = exported
    fused = tmp_path / "model.fused.onnx"
    fuse_onnx(raw, fused, num_heads=2, hidden_size=32)
    q = tmp_path / "model.int8.onnx"
    quantize_onnx(fused, q, cfg=QuantizeConfig(per_channel=per_channel))
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "DynamicQuantizeLinear"}
    diff = check_onnx(q, tiny_model, tokenizer, corpus[0][:4], max_length=64)
    assert 0 < diff < 0.2  # quantized: not bit-exact, but close on a random tiny model
    assert model_bytes(q) < model_bytes(fused)


def test_model_bytes_counts_external_data(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x" * 10)
    (tmp_path / "m.onnx.data").write_bytes(b"x" * 5)
    assert model_bytes(tmp_path / "m.onnx") == 15
