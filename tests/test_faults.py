"""The fault-injection hooks (polychromic.core.faults): inert unless POLYCHROMIC_FAULT is set, a
training fault fires once per marker, a scoring fault on every batch holding its prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polychromic.core import faults


def test_hooks_are_inert_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    assert faults.at_training_step(0.5, 2) is None
    faults.at_scoring([0, 1, 2])


def test_nan_fault_fires_once_at_its_step_and_lambda(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "nan"
    monkeypatch.setenv(faults.FAULT_ENV, json.dumps(
        [{"kind": "nan", "step": 2, "lambda_": 0.5, "marker": str(marker)},
         {"kind": "score", "prompt_index": 1}]))
    assert faults.at_training_step(0.5, 1) is None
    assert faults.at_training_step(1.0, 2) is None
    assert faults.at_training_step(0.5, 2) == "nan" and marker.read_text() == "step 2"
    assert faults.at_training_step(0.5, 2) is None  # the marker records it: once


def test_score_fault_raises_for_batches_holding_its_prompt(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.FAULT_ENV, json.dumps({"kind": "score", "prompt_index": 1}))
    faults.at_scoring([0, 2])
    with pytest.raises(RuntimeError, match="injected scoring failure for prompt 1"):
        faults.at_scoring([0, 1])
    with pytest.raises(RuntimeError):
        faults.at_scoring([1])  # every time, not once
