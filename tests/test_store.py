from __future__ import annotations

import json

import pytest

from paretobert.store import artifact, atomic_write_json, atomic_write_text, is_done, load_results


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = tmp_path / "a" / "r.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_text(p, 123)  # type: ignore[arg-type]  # fails inside the write
    assert json.loads(p.read_text()) == {"x": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]


def test_artifact_builds_once_and_reuses(tmp_path):
    calls = []

    def build(d):
        calls.append(d)
        (d / "w.bin").write_bytes(b"w")
        return {"n": 1}

    d1, m1, reused1 = artifact(tmp_path, "ckpt", "k1", build)
    d2, m2, reused2 = artifact(tmp_path, "ckpt", "k1", build)
    assert (reused1, reused2) == (False, True) and len(calls) == 1
    assert d1 == d2 == tmp_path / "ckpt" / "k1" and (d1 / "w.bin").exists()
    assert m1 == m2 == {"n": 1, "key": "k1"}


def test_interrupted_build_leaves_nothing_and_is_redone(tmp_path):
    def boom(d):
        (d / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifact(tmp_path, "onnx", "k", boom)
    assert not is_done(tmp_path / "onnx" / "k", "k")
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.is_dir()]
    # a leftover directory without meta.json (e.g. killed by SIGKILL) is rebuilt, not trusted
    (tmp_path / "onnx" / "k").mkdir()
    d, _, reused = artifact(tmp_path, "onnx", "k", lambda d: (d / "ok").write_text("1") and {})
    assert not reused and (d / "ok").exists()


def test_load_results_skips_unreadable(tmp_path):
    atomic_write_json(tmp_path / "a" / "result.json", {"variant_id": "a", "status": "ok"})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "result.json").write_text("{truncated")
    recs = load_results(tmp_path)
    assert [r["variant_id"] for r in recs] == ["a"] and recs[0]["job_dir"].endswith("a")
