"""bench/train.py runs rarely, on bare GPU machines: its dry run (tiny configs, CPU) is checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dry_run_trains_with_the_trainers_step_and_writes_a_row_per_case(tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "train.py"), "--dry-run", "--out", str(out),
                           "--steps", "1", "--only", "sd1", "--budget", "120"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["kind"] for row in rows] == ["environment", "measurement", "measurement", "done"]
    subject, style = rows[1], rows[2]
    assert (subject["family"], subject["lora_kind"], subject["rank"]) == ("sd1", "subject", 16)
    assert (style["lora_kind"], style["rank"]) == ("style", 32)
    assert subject["steps_per_s"] > 0 and subject["minutes_at_default_steps"] > 0
    assert subject["trainable_parameters"] > 0 and subject["optimizer"] == "AdamW"
