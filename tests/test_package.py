"""A real package: the wheel carries the Hydra configs, so an installed (non-editable)
paretobert runs its main job and its commands from any directory (slow: builds a wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built offline, installed without its dependencies into a fresh venv that
    sees this environment's packages (but not its editable paretobert)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-tree"  # a copy: an in-tree build would leave build/ in the checkout
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / f, src / f)
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    wheel = next((tmp / "dist").glob("paretobert-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    p = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                        str(wheel)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies, as a plain path: the editable install's .pth in there is not processed
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "elsewhere"
    work.mkdir()
    return wheel, venv, work


def _run(venv: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PARETOBERT_CACHE": str(work / "cache")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_carries_the_configs(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for conf in ("paretobert/conf/config.yaml", "paretobert/conf/model/tiny.yaml",
                 "paretobert/conf/experiment/smoke.yaml", "paretobert/conf/dataset/csv.yaml"):
        assert conf in names, conf


def test_the_installed_package_runs_from_another_directory(installed):
    _, venv, work = installed
    py = str(venv / "bin" / "python")
    where = _run(venv, work, py, "-c", "import paretobert; print(paretobert.__file__)")
    assert where.returncode == 0 and where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    job = _run(venv, work, py, "-m", "paretobert", "--cfg", "job")
    assert job.returncode == 0 and "name: minilm-l6" in job.stdout, job.stderr[-2000:]
    helped = _run(venv, work, str(venv / "bin" / "paretobert"), "--help")
    assert helped.returncode == 0 and "paretobert pick" in helped.stdout
    # the main job, a report and pick on its output: the smoke preset, one variant
    run = _run(venv, work, py, "-m", "paretobert", "+experiment=smoke", "quant=false", "seq_len=32",
               "allow_network=false", "hydra.sweep.dir=sweep")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (work / "sweep" / "frontier.csv").exists()
    picked = _run(venv, work, str(venv / "bin" / "paretobert"), "pick", "sweep")
    assert picked.returncode == 0 and picked.stdout.startswith("pick ("), picked.stderr
