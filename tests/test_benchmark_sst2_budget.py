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
             "--every", "500", "--batch-size", "32", "--ema", "0.99", "--extra-ema", "0.9995,0.9998b,1b@0.5", "--max-train", "300",
             "--model-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--data", "d", "--progress"]
    args = ap.parse_args(given)
    cmd = bench.child_command(ap, args, "policy-s1")
    assert cmd[0] == sys.executable and Path(cmd[1]).name == "sst2_budget.py"
    child = ap.parse_args(cmd[2:])
    assert child.jobs == "policy-s1" and child.parallel == 1  # one job, run in that process
    parent_only = bench.PARENT_ONLY - {"help"}
    assert {k: v for k, v in vars(child).items() if k not in parent_only} == \
        {k: v for k, v in vars(args).items() if k not in parent_only}
    assert child.epochs == 4.0 and child.batch_size == 32 and child.extra_ema == ["0.9995", "0.9998b", "1b@0.5"] and child.progress is True
    # options left at their defaults stay at them
    plain = ap.parse_args(bench.child_command(ap, ap.parse_args(["--jobs", "a,b"]), "a")[2:])
    assert vars(plain) == {**vars(ap.parse_args([])), "jobs": "a"}


def test_the_summary_gives_the_last_evaluations_dev_beside_the_kept_weights(bench, tmp_path):
    import json

    curve = [{"step": 1000, "epoch": 0.5, "val_accuracy": 0.95, "dev_accuracy": 0.90},
             {"step": 2000, "epoch": 1.0, "val_accuracy": 0.94, "dev_accuracy": 0.88}]
    done = {"job": "policy-s0", "validation": "phrases", "n_validation": 200, "dropped": 0, "lr": 5e-5,
            "head_lr_scale": 20.0, "epochs": 1.0, "best_epoch": 0.5, "stopped": "budget", "val_accuracy": 0.95,
            "dev_accuracy": 0.9, "dev_correct": 9, "n_dev": 10, "curve": curve}
    (tmp_path / "policy-s0.json").write_text(json.dumps(done))
    (tmp_path / "policy-s1.json").write_text(json.dumps({"job": "policy-s1", "curve": curve[:1]}))
    table = bench.summary(tmp_path).splitlines()
    assert len(table) == 4 and all(row.count("|") == 11 for row in table)
    # the kept (best) weights' dev, then the last evaluation's dev and its 2 validation texts below the best
    assert "| 5e-05 / 20x (16) |" in table[2]  # a record from before --batch-size ran batches of 16
    assert "| 0.9000 [" in table[2] and "| 0.8800 (2) |" in table[2]
    assert table[3].startswith("| policy-s1 | interrupted after 1 evaluations |")


def test_an_average_spec_reads_its_decay_correction_and_start(bench, capsys):
    assert bench.average_spec("0.999") == (0.999, "cap", 0.0)  # train.ema's own
    assert bench.average_spec("0.9998b") == (0.9998, "bias", 0.0)
    assert bench.average_spec("1b@0.67") == (1.0, "bias", 0.67)  # the uniform average of the last third
    for bad in ("1", "1.5b", "0.9@1", "x"):
        with pytest.raises(ValueError):
            bench.average_spec(bad)
    with pytest.raises(SystemExit):  # refused on the command line, before any job starts
        bench.parser().parse_args(["--extra-ema", "0.99,1"])
    assert "want DECAY[b][@START]" in capsys.readouterr().err


def test_the_summary_gives_an_avg_jobs_averages_beside_the_raw_weights(bench, tmp_path):
    import json

    curve = [{"step": 1000, "epoch": 0.5, "val_accuracy": 0.95, "dev_accuracy": 0.90,
              "ema_1b@0.5_val_accuracy": 0.96, "ema_1b@0.5_dev_accuracy": 0.91}]
    done = {"job": "avg-s0", "validation": "phrases", "n_validation": 200, "dropped": 0, "lr": 5e-5,
            "head_lr_scale": 20.0, "epochs": 1.0, "best_epoch": 0.5, "stopped": "budget", "val_accuracy": 0.95,
            "dev_accuracy": 0.9, "dev_correct": 9, "n_dev": 10, "curve": curve}
    (tmp_path / "avg-s0.json").write_text(json.dumps(done))
    rows = bench.summary(tmp_path)
    assert "avg-s0, 1b@0.5's average (--extra-ema)" in rows and "0.9100 / 0.9600 (0.9000)" in rows
    assert bench.seeded("avg-s3") == ("avg", 3)


def test_rdrop_jobs_are_seeded(bench):
    assert bench.seeded("rdrop-s2") == ("rdrop", 2)
