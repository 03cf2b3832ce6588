"""The review in a terminal (polychromic.review.terminal): the default view fits 100 columns with full
trial ids and untruncated numbers, ``--wide`` keeps the full table, ``--trial ID`` shows one
trial transposed. Checked in rich's recording console and in a real terminal (tmux) at 80, 100
and 160 columns, on the tiny study of conftest.py with Tune-style trial ids."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TRIALS, load_cli, one_line_error, write_tiny_study

from polychromic.core import columns
from polychromic.review.study import load_study
from polychromic.review.terminal import print_table, print_trial

#: Tune's trial ids look like this (5 hex digits, then the trial's number)
TUNE_IDS = {old: f"3f2a1_{i:05d}" for i, old in enumerate(TRIALS)}
WIDTHS = (80, 100, 160)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trials = {TUNE_IDS[k]: v for k, v in TRIALS.items()}
    return write_tiny_study(tmp_path_factory.mktemp("studies"), trials=trials, headroom=True)


def recorded(fn: Any, *args: Any, width: int = 100, **kwargs: Any) -> str:
    """What ``fn(..., console=...)`` prints in a ``width``-column console, as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    fn(*args, console=console, **kwargs)
    return console.export_text()


def check_lines(text: str, width: int) -> None:
    long = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not long, f"{len(long)} line(s) wider than {width}: {long[:2]}"


def test_default_view_fits_100_columns(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    out = recorded(print_table, study, study.frame, width=100)
    check_lines(out, 100)
    assert "…" not in out
    for tid in TUNE_IDS.values():
        assert tid in out
    head = out[:out.index("─")]  # the header, above the rule
    for metric in ("pass@1", *columns.HEADLINE_DIVERSITY):
        assert columns.short(metric) in head, metric
    # Δ compact, without a CI: "+0.05" under 0.45 for the λ=0.1 trial, no "[" in the table
    table = out[:out.index("vs the λ=0 baseline")]
    assert "+0.05" in table and "[" not in table
    assert "baseline" in table
    # one verdict line per finished non-baseline trial, the failure, then the captions
    notes = out[out.index("vs the λ=0 baseline"):]
    for lam in ("λ=0.1:", "λ=1:", "λ=3:"):
        assert lam in notes
    assert "failed: torch.OutOfMemoryError" in notes
    assert "warning: ceiling: baseline semantic_diversity_per_prompt" in notes
    assert "$2.00/GPU-hour" in notes


def test_narrow_console_drops_columns_instead_of_truncating(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    out = recorded(print_table, study, study.frame, width=60)
    check_lines(out, 60)
    assert "…" not in out
    for tid in TUNE_IDS.values():
        assert tid in out
    assert "not shown at this width:" in out


def test_default_view_without_verdict_or_new_columns(study_dir: Path) -> None:
    """A leaderboard from before verdict/MDE/headroom: the view works, nothing made up."""
    study = load_study(str(study_dir))
    old = study.frame.drop(columns=[c for c in study.frame.columns if c == "verdict"
                                    or c.startswith(("mde_", "headroom_", "floor_", "ceiling_"))])
    study.frame = old
    out = recorded(print_table, study, old, width=100)
    assert "vs the λ=0 baseline" in out  # the failed trial's reason is still listed
    assert "λ=0.1:" not in out
    out = recorded(print_trial, study, TUNE_IDS["aaaa1111"], width=100)
    header = next(line for line in out.splitlines() if " metric " in line and "value" in line)
    assert "95% CI" in header and "MDE" not in header and "headroom" not in header


def test_wide_view_has_every_headline_metric_with_ci(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    out = recorded(print_table, study, study.frame, width=400, wide=True)
    for metric in ("pass@1", "pass@5", "quality_mean", *columns.HEADLINE_DIVERSITY,
                   "semantic_diversity"):
        assert metric in out
    assert "Δ +0.05 (+13%)" in out and "[0, +0.15]" in out
    assert "0 (cpu)" in out and "grad share" in out


def test_trial_view_is_transposed(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    tid = TUNE_IDS["bbbb2222"]
    out = recorded(print_trial, study, tid[:-1] + "2", width=100)  # the full id
    check_lines(out, 100)
    assert "…" not in out
    assert f"trial {tid} of study tiny" in out
    for knob in ("lambda_", "lora_r", "learning_rate", "steps", "gpu_hours", "checkpoint_path"):
        assert knob in out
    for header in ("value", "baseline", "Δ", "95% CI", "MDE", "headroom"):
        assert header in out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()
            if line.startswith(" ") and "  " in line.strip()}
    for metric in ("pass@1", "quality_mean", *columns.DIVERSITY):
        assert any(key.startswith(columns.short(metric) + " ") for key in rows), metric
    sem = next(line for key, line in rows.items() if key.startswith("sem div ↑"))
    assert "%" in sem  # its headroom
    assert "verdict" in out and "λ=1:" in out
    wide = recorded(print_trial, study, tid, width=200)
    assert "semantic_diversity_per_prompt" in wide  # the column names fit at 200


def test_cli_trial_and_wide(study_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = load_cli("leaderboard")
    assert cli.main([str(study_dir), "--trial", "3f2a1_00002"]) == 0
    assert "trial 3f2a1_00002 of study tiny" in capsys.readouterr().out
    assert cli.main([str(study_dir), "--trial", "3f2a1_0000"]) == 2
    assert "ambiguous" in one_line_error(capsys.readouterr().err)
    assert cli.main([str(study_dir), "--trial", "nope"]) == 2
    assert "does not exist" in one_line_error(capsys.readouterr().err)
    assert cli.main([str(study_dir), "--trial", "3f2a1_00002", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "3f2a1_00002" in lines[1]


def test_trial_view_shows_where_the_time_went(study_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``--trial ID`` shows the trial's ``phase_seconds`` (polychromic.core.phases) in order;
    a trial whose result.json has none shows no such line."""
    import json
    import shutil

    from polychromic.core.phases import trial_phases

    study = tmp_path / "tiny"
    shutil.copytree(study_dir, study)
    tid = TUNE_IDS["bbbb2222"]
    result_path = study / "trials" / tid / "result.json"
    result = json.loads(result_path.read_text())
    result["phase_seconds"] = trial_phases(64.0, 100.0, 112.0, 3.0, 140.0,
                                           {"evaluation_startup": 9.0, "generation": 6.0,
                                            "scoring": 2.5, "writing": 0.5}, 0.0)
    result["evaluated_in"] = "worker"
    result_path.write_text(json.dumps(result))
    cli = load_cli("leaderboard")
    assert cli.main([str(study), "--trial", tid]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("phase_seconds"))
    assert "worker start 12.0 s · model load 3.0 s · training 25.0 s" in " ".join(
        out.split()), out
    assert line.index("worker start") < line.index("model load")
    assert "(evaluated in the Train worker)" in " ".join(out.split())
    assert cli.main([str(study), "--trial", TUNE_IDS["aaaa1111"]]) == 0
    assert "phase_seconds" not in capsys.readouterr().out


def test_markdown_lists_the_verdicts(study_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = load_cli("leaderboard")
    assert cli.main([str(study_dir), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert f"- verdict {TUNE_IDS['aaaa1111']}: λ=0.1:" in out


# --- a real terminal ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux, or ./setup.sh as root): "
                    "the real-terminal width checks need it")
    return path


def in_tmux(tmux: str, args: list[str], width: int, tmp: Path) -> str:
    """Run ``study/leaderboard.py ARGS`` in a detached tmux window ``width`` columns wide and
    return the screen, wrapped lines joined (so a line wider than the window shows as one)."""
    socket = f"polychromic-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    done = tmp / f"done-{socket}"
    cmd = " ".join([sys.executable, str(ROOT / "study" / "leaderboard.py"), *args])
    script = tmp / f"{socket}.sh"
    script.write_text(f"unset COLUMNS LINES\n{cmd}\necho $? > {done}\nsleep 600\n")
    base = [tmux, "-L", socket, "-f", "/dev/null", "-u"]
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.pop("TMUX", None)
    subprocess.run([*base, "new-session", "-d", "-x", str(width), "-y", "50",
                    f"bash {script}"], check=True, env=env, timeout=30)
    try:
        deadline = time.monotonic() + 120
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists(), "leaderboard.py did not finish in tmux within 120 s"
        assert done.read_text().strip() == "0"
        screen = subprocess.run([*base, "capture-pane", "-p", "-J", "-S", "-"], check=True,
                                capture_output=True, text=True, env=env, timeout=30).stdout
    finally:
        subprocess.run([*base, "kill-server"], env=env, timeout=30, check=False)
    return screen


@pytest.mark.parametrize("width", WIDTHS)
def test_default_view_in_a_real_terminal(study_dir: Path, tmux: str, tmp_path: Path,
                                         width: int) -> None:
    screen = in_tmux(tmux, [str(study_dir)], width, tmp_path)
    assert "study tiny: 7 of 7 trials" in screen
    check_lines(screen, width)
    for tid in TUNE_IDS.values():
        assert tid in screen, f"{tid} missing at {width} columns"
    if width >= 100:
        assert "…" not in screen, f"truncated at {width} columns"
        for metric in ("pass@1", *columns.HEADLINE_DIVERSITY):
            assert columns.short(metric) in screen
    assert "λ=1:" in screen  # the verdict lines


@pytest.mark.parametrize("width", WIDTHS)
def test_trial_view_in_a_real_terminal(study_dir: Path, tmux: str, tmp_path: Path,
                                       width: int) -> None:
    tid = TUNE_IDS["aaaa1111"]
    screen = in_tmux(tmux, [str(study_dir), "--trial", tid], width, tmp_path)
    check_lines(screen, width)
    assert f"trial {tid} of study tiny" in screen
    if width >= 100:
        assert "…" not in screen
        for header in ("value", "Δ", "95% CI", "MDE", "headroom"):
            assert header in screen


def test_wide_in_a_100_column_terminal_is_stacked_blocks_without_cut_cells(
        study_dir: Path, tmux: str, tmp_path: Path) -> None:
    """``--wide`` in a terminal: blocks of columns that each fit the width, every block with
    ★, trial and status, no cell cut to ``…``; piped (the recording console, not a terminal):
    one table with every metric column."""
    screen = in_tmux(tmux, [str(study_dir), "--wide"], 100, tmp_path)
    check_lines(screen, 100)
    assert "…" not in screen
    titles = [line for line in screen.splitlines() if line.startswith("study tiny: 7 of 7")]
    assert len(titles) > 1 and titles[-1].rstrip().endswith(f"[{len(titles)}/{len(titles)}]")
    for metric in ("pass@1", "quality_mean", *columns.HEADLINE_DIVERSITY, "GPU-h", "cost $"):
        assert metric in screen, metric
    for tid in TUNE_IDS.values():
        assert screen.count(tid) >= len(titles), tid  # every block names every trial
    assert "Δ +0.05 (+13%)" in screen and "[0, +0.15]" in screen
    study = load_study(str(study_dir))
    piped = recorded(print_table, study, study.frame, width=250, wide=True)
    assert sum(line.startswith("study tiny") for line in piped.splitlines()) == 1
    header = next(line for line in piped.splitlines() if "pass@1" in line)
    assert all(m in header for m in ("pass@1", *columns.HEADLINE_DIVERSITY, "GPU-h"))


def test_wide_with_trial_is_refused_in_one_line(study_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cli = load_cli("leaderboard")
    assert cli.main([str(study_dir), "--wide", "--trial", TUNE_IDS["aaaa1111"]]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "--wide" in line and "--trial already shows every metric" in line


def test_default_caption_warns_only_about_shown_metrics(study_dir: Path) -> None:
    """The default view's caption: ceiling warnings of the metrics in the table, one line
    counting the others (shown by --all-warnings and --wide), each warning once."""
    study = load_study(str(study_dir))
    out = recorded(print_table, study, study.frame, width=100)
    notes = out[out.index("objectives:"):].replace("\n", " ")
    assert "warning: ceiling: baseline semantic_diversity_per_prompt" in notes
    # the two metrics past the ceiling: one fact, one line, each metric with its numbers
    flat = " ".join(notes.split())
    assert "warning: past ceiling: baseline beyond unrelated texts, a gain would not mean more " \
        "diverse replies on distinct_2_per_prompt (0.821, floor 0.2, ceiling 0.429; headroom " \
        "-172%), self_bleu_per_prompt (" in flat
    assert flat.count("past ceiling") == 1
    assert "distinct_1 (corpus)" not in notes and "distinct_classes" not in notes
    hidden = re.search(r"(\d+) more warning\(s\) on metrics not shown here: --all-warnings or "
                       r"--wide", notes)
    assert hidden
    every = recorded(print_table, study, study.frame, width=100, all_warnings=True)
    # one ", floor " per metric whose headroom is warned about, merged into a line or not
    assert " ".join(every.split()).count(", floor ") == notes.count(", floor ") + int(hidden[1])
    assert "distinct_1 (corpus)" in every and "more warning(s)" not in every
    wide = recorded(print_table, study, study.frame, width=250, wide=True)
    assert "distinct_1 (corpus)" in wide and "more warning(s)" not in wide
    for text in (out, every, wide):
        lines = [x for x in text.splitlines() if x.startswith("warning: ")]
        assert len(lines) == len(set(lines))  # each fact once
    # the CPU trial (use_gpu: false) in the cost line, the one without a recorded device in
    # its own note, not both in both
    assert "1 trial(s) on CPU: 0 GPU-hours" in notes and "no recorded GPU" not in notes
    assert notes.count("device not recorded") == 1


def test_how_the_intervals_were_computed_reaches_the_full_captions(study_dir: Path) -> None:
    """The leaderboard says how it computed the CIs and over which trials Holm adjusts
    (``attrs``); ordering and the confirmation columns must not drop it on the way to the
    captions of the views that show CIs (``--wide``, markdown, HTML, the card), while the
    compact view, which shows none, does not spend a line on it."""
    from polychromic.review.leaderboard import build_leaderboard

    df = build_leaderboard(study_dir)
    attrs = df.attrs
    assert attrs["bootstrap"] == "paired bootstrap over prompts, 2000 resamples, seed 0"
    compared = int((df["status"].eq("finished") & ~df["is_baseline"].astype(bool)).sum())
    assert compared > 1
    assert attrs["multiplicity"] == (f"Holm over the study's {compared} finished non-baseline "
                                     "trial(s) (significant_M)")
    study = load_study(str(study_dir))
    assert study.ci_method == attrs["bootstrap"] and study.multiplicity == attrs["multiplicity"]
    wide = " ".join(recorded(print_table, study, study.frame, width=250, wide=True).split())
    assert f"CI: {attrs['bootstrap']}; {attrs['multiplicity']}" in wide
    compact = " ".join(recorded(print_table, study, study.frame, width=100).split())
    assert "CI: paired bootstrap" not in compact
