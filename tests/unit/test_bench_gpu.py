"""bench/gpu.py is run rarely, on bare machines: its wheel bootstrap and its row-per-measurement
output are checked here on the CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gpu_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_gpu"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_wheels_that_fit_this_python_go_behind_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = _gpu_module()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for name, module in [("purepkg-1.0-py3-none-any.whl", "purepkg"),
                         (f"binpkg-1.0-{tag}-{tag}-manylinux_2_17_x86_64.whl", "binpkg"),
                         ("abipkg-1.0-cp38-abi3-manylinux2014_x86_64.whl", "abipkg"),
                         ("otherpkg-1.0-cp27-cp27mu-manylinux1_x86_64.whl", "otherpkg"),
                         ("macpkg-1.0-py3-none-macosx_11_0_arm64.whl", "macpkg")]:
        with zipfile.ZipFile(wheels / name, "w") as archive:
            archive.writestr(f"{module}/__init__.py", f"NAME = {module!r}\n")
    monkeypatch.setattr(gpu, "VENDOR", tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    brought = gpu.bring_vendored()
    assert sorted(brought) == sorted(p.name for p in wheels.glob("*.whl")
                                     if not p.name.startswith(("otherpkg", "macpkg")))
    assert sys.path[-1] == str(tmp_path / f"site-{tag}")  # behind everything installed
    assert (tmp_path / f"site-{tag}" / "binpkg" / "__init__.py").is_file()
    assert not (tmp_path / f"site-{tag}" / "otherpkg").exists()


@pytest.mark.slow
def test_dry_run_writes_one_row_per_measurement_within_its_budget(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--out", str(out),
                           "--budget", "25", "--steps", "1", "--only", "off"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["kind"] == "environment" and rows[0]["diffusers"] and rows[0]["torch"]
    assert rows[-1]["kind"] == "done"
    body = rows[1:-1]
    assert len(body) == 10  # every eager case: measured, or written as skipped once the budget ran out
    assert body[0]["kind"] == "measurement" and body[0]["mfu"] > 0
    assert all(row["kind"] in ("measurement", "skipped") for row in body)
    assert all("time budget" in row["why"] for row in body if row["kind"] == "skipped")
