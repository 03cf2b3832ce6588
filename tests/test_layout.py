"""The study folder has one owner (``polychromic.store.layout``), and reading a study needs no Ray.

* What the Tune driver records (``polychromic.tuning.recorder``) and what a trial writes land
  where the leaderboard looks for them; a name and its storage folder lead every recipe to the
  same study folder (``layout.study_dir``).
* No module but ``layout.py`` spells a study file's name (an ``ast`` scan, docstrings aside).
* Loading and rendering a finished study (the imports and views of ``study/leaderboard.py``)
  in a fresh interpreter leaves ``ray`` out of ``sys.modules``.

Nothing here starts Ray: the recorder's callbacks are called directly with stand-in trials.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from conftest import ROOT, tiny_generations, write_tiny_study

from polychromic.review.leaderboard import build_leaderboard
from polychromic.review.study import resolve_study
from polychromic.store import layout, remote
from polychromic.store.generations import (
    example_of,
    parquet_problem,
    prompt_row,
    read_generations,
    write_generations,
)
from polychromic.store.records import read_json, read_jsonl, write_json
from polychromic.tasks.base import Example

#: study file names that only layout.py may spell (as a whole string constant)
NAMES = {layout.STUDY_FILE, layout.OPTUNA_DB, layout.TUNE, layout.LEADERBOARD, layout.PLAN_FILE,
         layout.TRIALS, layout.CONFIG, layout.HISTORY, layout.GENERATIONS, layout.HEADROOM, layout.FRONTIER,
         layout.RESULT, layout.STATUS, layout.ADAPTER, layout.ADAPTER_WEIGHTS,
         layout.CHECKPOINT_STATE, layout.CHECKPOINT_HISTORY, layout.CHECKPOINT_ERROR}
#: the same words where they are not a study's files
NOT_STUDY_FILES = {
    ("polychromic/models/loading.py", "config.json"),  # a Hugging Face model folder's config
    ("polychromic/models/memory.py", "config.json"),  # the same, read for the memory estimate
    ("polychromic/tasks/sandbox.py", "status.json"),  # the code sandbox's own work folder
    ("polychromic/export/artifacts.py", "adapter"),  # the export mode (adapter or merged)
    ("polychromic/export/card.py", "adapter"),  # the export mode, as the card describes it
}


def test_recorded_trials_are_what_the_leaderboard_reads(tmp_path: Path) -> None:
    from polychromic.tuning.recorder import StudyRecorder

    study = tmp_path / "s"
    recorder = StudyRecorder(study)
    for tid, lam in (("done0000", 0.0), ("stop1111", 1.0), ("fail2222", 2.0)):
        write_json(layout.trial_dir(study, tid) / layout.CONFIG, {"lambda_": lam, "seed": 0})
        for step in (2, 4):
            recorder.on_trial_result(0, [], SimpleNamespace(trial_id=tid),
                                     {"step": step, "quality_loss": 1.0 / step, "nested": {}})
    write_json(layout.trial_dir(study, "done0000") / layout.RESULT,
               {"status": "finished", "error": "", "step": 4, "trial_id": "done0000"})
    recorder.on_trial_complete(0, [], SimpleNamespace(trial_id="done0000"))
    recorder.on_trial_complete(0, [], SimpleNamespace(trial_id="stop1111"))  # ASHA stopped it
    error_file = tmp_path / "error.txt"
    error_file.write_text("Traceback ...\nRuntimeError: out of memory\n")
    recorder.on_trial_error(0, [], SimpleNamespace(trial_id="fail2222", error_file=str(error_file)))

    history = read_jsonl(study / layout.TRIALS / "stop1111" / layout.HISTORY)
    assert [h["step"] for h in history] == [2, 4] and "nested" not in history[0]
    assert read_json(layout.trial_dir(study, "fail2222") / layout.STATUS) == {
        "status": "error", "error": "RuntimeError: out of memory"}
    rows = build_leaderboard(study).set_index("trial_id")
    assert sorted(rows.index) == ["done0000", "fail2222", "stop1111"]
    assert rows.loc["done0000", "status"] == "finished"
    assert rows.loc["stop1111", "status"] == "early_stopped"
    assert rows.loc["fail2222", "error"] == "RuntimeError: out of memory"
    assert (rows["steps"] == 4).all() and rows.loc["done0000", "is_baseline"]


def test_a_name_leads_every_recipe_to_the_same_folder(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    study = write_tiny_study(tmp_path / "store", name="named")
    where = layout.study_dir(tmp_path / "store", "named")
    assert where == study.resolve()
    assert resolve_study("named", tmp_path / "store") == where  # leaderboard, score, export, …
    assert remote.study_locations(tmp_path / "store", "unused", "named") == (where, None)  # run
    assert remote.study_locations("s3://b/x", tmp_path / "store", "named") == (where, "s3://b/x/named")
    assert layout.looks_like_study(where) and not layout.looks_like_study(tmp_path)


def test_records_and_ray_files_of_a_uri_study() -> None:
    assert layout.is_record((layout.STUDY_FILE,))
    assert layout.is_record((layout.TRIALS, "t1", layout.RESULT))
    assert layout.is_record((layout.confirm_experiment("t1"), "x.json"))
    assert not layout.is_record((layout.TUNE, "experiment_state-1.json"))
    assert not layout.is_record((layout.TRIALS, "t1", layout.TRAIN, "checkpoint_1", "state.pt"))
    assert not layout.is_record((layout.TRIALS, "t1", ".result.json.12.tmp"))


def test_the_sample_table_round_trips(tmp_path: Path) -> None:
    example = Example("p1", "a prompt", "a target", "g1", {"tests": ["assert f()"]})
    assert example_of(prompt_row(3, example)) == example
    gens = tiny_generations(0.5, 0)
    path = tmp_path / "t" / layout.GENERATIONS
    write_generations(gens, path)
    assert parquet_problem(path) is None
    pd.testing.assert_frame_equal(read_generations(path), gens)
    assert list(read_generations(path, ["prompt_id", "passed"]).columns) == ["prompt_id", "passed"]
    pd.DataFrame({"x": [1]}).to_parquet(path)
    assert parquet_problem(path) == "no prompt_id column"


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module that is not a docstring, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


def test_only_layout_spells_a_study_file() -> None:
    files = [*(ROOT / "polychromic").rglob("*.py"), *(ROOT / "study").glob("*.py")]
    found = []
    for path in sorted(files):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "polychromic/store/layout.py":
            continue
        found += [f"{rel}:{line}: {value!r}" for line, value in _string_constants(path)
                  if value in NAMES and (rel, value) not in NOT_STUDY_FILES]
    assert not found, "use polychromic.store.layout:\n" + "\n".join(found)


#: what study/leaderboard.py does with a finished study, in a fresh interpreter
REVIEW = """
import importlib.util, sys
from pathlib import Path

root, study, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
import polychromic.review.leaderboard, polychromic.review.html_report, polychromic.review.study, polychromic.review.format
import polychromic.review.terminal
from polychromic.review.html_report import write_report
from polychromic.review.format import render
from polychromic.review.study import load_study
from polychromic.review.terminal import print_table, print_trial

spec = importlib.util.spec_from_file_location("cli_leaderboard", root / "study" / "leaderboard.py")
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)
for argv in ([], ["--wide"], ["--trial", "base0000"], ["--format", "csv"],
             ["--format", "json"], ["--html", str(out / "report.html")]):
    assert cli.main([study, *argv]) == 0, argv
loaded = load_study(study)
print_table(loaded, loaded.frame)
print_trial(loaded, "aaaa1111")
assert isinstance(render(loaded, loaded.frame, "parquet"), bytes)
write_report(loaded, loaded.frame, out / "again.html")
ray = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("RAY-MODULES:", ray)
assert not ray, ray
"""


def test_reading_a_study_imports_no_ray(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    study = write_tiny_study(tmp_path / "studies", headroom=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-c", REVIEW, str(ROOT), str(study), str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "RAY-MODULES: []" in proc.stdout
    assert (tmp_path / "report.html").is_file() and (tmp_path / "again.html").is_file()
