"""benchmarks/sst2_budget.py runs its jobs as subprocesses under --parallel: each gets every
option it was given (an --epochs once reached no job: they ran the 3-epoch default)."""

import sys
from pathlib import Path

import pytest


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return __import__("sst2_budget")


def test_a_parallel_jobs_subprocess_gets_every_option(bench, tmp_path):
    ap = bench.parser()
    given = ["--jobs", "policy-s0,policy-s1", "--parallel", "2", "--threads", "1", "--epochs", "4",
             "--every", "500", "--ema", "0.99", "--extra-ema", "0.9995,0.9998", "--max-train", "300",
             "--model-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--data", "d", "--progress"]
    args = ap.parse_args(given)
    cmd = bench.child_command(ap, args, "policy-s1")
    assert cmd[0] == sys.executable and Path(cmd[1]).name == "sst2_budget.py"
    child = ap.parse_args(cmd[2:])
    assert child.jobs == "policy-s1" and child.parallel == 1  # one job, run in that process
    parent_only = bench.PARENT_ONLY - {"help"}
    assert {k: v for k, v in vars(child).items() if k not in parent_only} == \
        {k: v for k, v in vars(args).items() if k not in parent_only}
    assert child.epochs == 4.0 and child.extra_ema == [0.9995, 0.9998] and child.progress is True
    # options left at their defaults stay at them
    plain = ap.parse_args(bench.child_command(ap, ap.parse_args(["--jobs", "a,b"]), "a")[2:])
    assert vars(plain) == {**vars(ap.parse_args([])), "jobs": "a"}
