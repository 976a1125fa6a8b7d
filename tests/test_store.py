from __future__ import annotations

import json
import os
import stat

import pytest

from paretobert.store import (
    artifact,
    as_if_created,
    atomic_write_json,
    atomic_write_text,
    is_done,
    leftovers,
    load_results,
    prune,
    swept_write_json,
    umask,
)


def writes(name: str, data: bytes = b"w"):
    """An artifact build that writes one file ``name`` holding ``data`` and no meta of its own."""

    def build(d):
        (d / name).write_bytes(data)
        return {}

    return build


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = tmp_path / "a" / "r.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]


@pytest.fixture(params=[0o022, 0o027, 0o077])
def mask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_umask_is_read_without_changing_it(mask):
    assert umask() == mask and umask() == mask


def test_written_files_and_built_artifacts_get_the_umasks_modes_not_tempfiles_private_ones(tmp_path, mask):
    """tempfile makes 0600 files and 0700 directories; a result, a report or a cache entry
    renamed from them would be unreadable to the group of a shared output folder or cache."""
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1})
    swept_write_json(tmp_path / "s.json", {"x": 1})
    d, _, _ = artifact(tmp_path, "ckpt", "k1", writes("w.bin"))
    mode = lambda q: stat.S_IMODE(q.stat().st_mode)  # noqa: E731
    assert mode(p) == mode(tmp_path / "s.json") == 0o666 & ~mask  # 0644 under 022, 0640 under 027
    assert mode(d) == 0o777 & ~mask and mode(d / "meta.json") == 0o666 & ~mask
    private = tmp_path / "private"
    private.write_text("x")
    private.chmod(0o600)
    as_if_created(private)
    assert mode(private) == 0o666 & ~mask


def test_a_refused_chmod_keeps_the_write_and_warns_once(tmp_path, monkeypatch, caplog):
    from paretobert import store

    def refuse(self, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(store, "_chmod_refused", [])
    monkeypatch.setattr(store.Path, "chmod", refuse)
    with caplog.at_level("WARNING", logger="paretobert.store"):
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_write_json(tmp_path / "b.json", {"x": 2})
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 2}
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"could not give {next(iter(store._chmod_refused))} the umask's permissions"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_write_deletes_the_old_temp_files_a_killed_writer_of_that_file_left(tmp_path):
    """A run killed (SIGKILL) between its temp file and the rename leaves ``.NAME.RANDOM.tmp``
    beside NAME (a run's result.json, a sweep's CSVs); the next write of NAME deletes those older
    than ATOMIC_GRACE_S, and keeps young ones (another writer's, mid-write) and other files'."""
    import os
    import time

    from paretobert.store import ATOMIC_GRACE_S

    old = time.time() - ATOMIC_GRACE_S - 5
    for name in (".result.json.abc.tmp", ".results.csv.def.tmp"):
        (tmp_path / name).write_text('{"torn"')
        os.utime(tmp_path / name, (old, old))
    (tmp_path / ".result.json.young.tmp").write_text("{}")
    atomic_write_json(tmp_path / "result.json", {"x": 1})
    assert json.loads((tmp_path / "result.json").read_text()) == {"x": 1}
    assert sorted(f.name for f in tmp_path.iterdir()) == [".result.json.young.tmp", ".results.csv.def.tmp",
                                                          "result.json"]


def test_swept_write_deletes_what_killed_writers_of_the_same_file_left(tmp_path):
    """A cached result written by several runs: a writer killed between its temp file and the
    rename leaves ``.NAME.RANDOM.tmp``; the next write of that file deletes it (under the key's
    lock, as ``leftovers`` reads it), and keeps other files' temp files."""
    import fcntl

    res = tmp_path / "results"
    res.mkdir()
    (res / ".k1-m.json.abc.tmp").write_text('{"torn"')
    (res / ".k2-m.json.def.tmp").write_text("{}")
    swept_write_json(res / "k1-m.json", {"x": 1})
    assert json.loads((res / "k1-m.json").read_text()) == {"x": 1}
    assert sorted(f.name for f in res.iterdir()) == [".k2-m.json.def.tmp", "k1-m.json", "k1-m.lock"]
    assert {x.path.name: x.running for x in leftovers(tmp_path)} == {".k2-m.json.def.tmp": True}  # fresh: kept
    (res / ".k1-m.json.ghi.tmp").write_text("{}")
    with open(res / "k1-m.lock", "w") as held:  # another run is writing k1-m.json now
        fcntl.flock(held, fcntl.LOCK_EX)
        assert {x.path.name for x in leftovers(tmp_path) if x.running} == {".k1-m.json.ghi.tmp", ".k2-m.json.def.tmp"}
        assert not prune(tmp_path)


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
    assert m1 == m2 and m1["n"] == 1 and m1["key"] == "k1" and set(m1["integrity"]) == {"w.bin"}


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
    d, _, reused = artifact(tmp_path, "onnx", "k", writes("ok", b"1"))
    assert not reused and (d / "ok").exists()


def test_load_results_skips_unreadable(tmp_path):
    atomic_write_json(tmp_path / "a" / "result.json", {"variant_id": "a", "status": "ok"})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "result.json").write_text("{truncated")
    recs = load_results(tmp_path)
    assert [r["variant_id"] for r in recs] == ["a"] and recs[0]["job_dir"].endswith("a")


@pytest.mark.parametrize("fault", ["truncate", "flip", "delete", "extra-meta-key"])
def test_corrupt_artifact_is_reported_and_rebuilt(tmp_path, fault, caplog):
    builds = []

    def build(d):
        builds.append(1)
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(bytes(range(256)) * 4)
        return {"file": "sub/w.bin"}

    d, meta, _ = artifact(tmp_path, "ckpt", "k", build)
    assert meta["integrity"]["sub/w.bin"]["size"] == 1024
    f = d / "sub" / "w.bin"
    if fault == "truncate":
        f.write_bytes(f.read_bytes()[:100])
    elif fault == "flip":
        data = bytearray(f.read_bytes())
        data[500] ^= 1
        f.write_bytes(bytes(data))
    elif fault == "delete":
        f.unlink()
    else:  # metadata edited by hand, files intact: still trusted
        atomic_write_json(d / "meta.json", {**meta, "note": "x"})
    with caplog.at_level("WARNING"):
        d2, meta2, reused = artifact(tmp_path, "ckpt", "k", build)
    if fault == "extra-meta-key":
        assert reused and len(builds) == 1
        return
    assert not reused and len(builds) == 2 and "corrupt cached artifact" in caplog.text
    assert (d2 / "sub" / "w.bin").read_bytes() == bytes(range(256)) * 4
    assert artifact(tmp_path, "ckpt", "k", build)[2] is True  # intact again


def test_sealed_records_detect_alteration():
    from paretobert.store import seal, seal_ok

    rec = seal({"variant_id": "v", "accuracy": 0.9, "nested": {"a": [1, 2]}})
    assert seal_ok(rec) and seal_ok(json.loads(json.dumps(rec)))
    assert not seal_ok({**rec, "accuracy": 0.99})
    assert seal_ok({"variant_id": "old record without a seal"})


def test_leftovers_are_listed_and_pruned_unless_their_build_runs(tmp_path, capsys):
    """What builds leave beside the artifacts (a killed build's temporary directory, torn
    writes, an old atomic-write temp file) is pruned; a running build's (its key's lock held)
    and a fresh atomic write are kept; snapshots and teacher logits only when asked; artifacts
    are never touched."""
    import fcntl
    import os

    from paretobert import cache

    root = tmp_path / "cache"
    final, _, _ = artifact(root, "checkpoints", "done", writes("w.bin", b"x" * 10))
    ck = root / "checkpoints"
    (ck / ".killed.ab12.tmp").mkdir()
    (ck / ".killed.ab12.tmp" / "w.bin").write_bytes(b"y" * 1000)
    for name in (".paused.resume.pt", ".paused.teacher.pt", ".torn.resume.pt.123.part", ".busy.x1.tmp"):
        (ck / name).write_bytes(b"z" * 100)
    for key in ("killed", "paused", "torn", "busy"):
        (ck / f"{key}.lock").touch()
    res = root / "results"
    res.mkdir()
    (res / ".a-b.json.old.tmp").write_text("{}")
    os.utime(res / ".a-b.json.old.tmp", (1, 1))
    (res / ".c-d.json.new.tmp").write_text("{}")
    with open(ck / "busy.lock", "w") as held:  # a build of "busy" is running
        fcntl.flock(held, fcntl.LOCK_EX)
        found = {x.path.name: x for x in leftovers(root)}
        assert set(found) == {".killed.ab12.tmp", ".paused.resume.pt", ".paused.teacher.pt",
                              ".torn.resume.pt.123.part", ".busy.x1.tmp", ".a-b.json.old.tmp", ".c-d.json.new.tmp"}
        assert found[".killed.ab12.tmp"].bytes == 1000 and found[".killed.ab12.tmp"].key == "killed"
        assert {n for n, x in found.items() if x.running} == {".busy.x1.tmp", ".c-d.json.new.tmp"}
        assert {n for n, x in found.items() if x.resumable} == {".paused.resume.pt", ".paused.teacher.pt"}
        assert cache.main(["--cache-dir", str(root)]) == 0
        out = capsys.readouterr().out
        assert "leftovers: 7" in out and "a build of this key is running: kept" in out and " MB" in out
        gone = {x.path.name for x in prune(root)}
        assert gone == {".killed.ab12.tmp", ".torn.resume.pt.123.part", ".a-b.json.old.tmp"}
        assert (ck / ".busy.x1.tmp").exists() and (ck / ".paused.resume.pt").exists()
        assert {x.path.name for x in prune(root, resumable=True)} == {".paused.resume.pt", ".paused.teacher.pt"}
    assert {x.path.name for x in leftovers(root)} == {".busy.x1.tmp", ".c-d.json.new.tmp"}
    assert is_done(final, "done") and (final / "w.bin").read_bytes() == b"x" * 10
    assert cache.main(["--cache-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
