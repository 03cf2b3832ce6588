"""study/leaderboard.py on a hand-built finished "tiny study": ordering, Pareto marker, cost,
filters, every output format parsed back, the HTML report, and one-line errors.

The study folder is written file by file in the layout of ``polychromic.store.layout`` (config.json,
history.jsonl, result.json, status.json, generations.parquet), with a constructed Pareto case:

    trial     λ     pass@1  semantic_div  status          Pareto (pass@1 ↑, semantic ↑)
    base0000  0     0.40    0.50          finished        no (dominated by aaaa1111)
    aaaa1111  0.1   0.45    0.55          finished        yes
    bbbb2222  1.0   0.30    0.80          finished        yes
    cccc3333  3.0   0.30    0.70          finished        no (dominated by bbbb2222)
    dddd4444  10    —       —             failed (OOM)    no
    eeee5555  0.5   —       —             early-stopped   no
    ffff6666  2.0   —       —             running         no
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    DEFAULT_ORDER,
    SPACE,
    TRIALS,
    load_cli,
    one_line_error,
    write_json_file,
    write_tiny_study,
)

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.metrics import pass_at_k
from polychromic.review.format import render
from polychromic.review.study import (
    DEFAULT_GPU_HOUR_PRICE,
    apply_filter,
    load_study,
    parse_filter,
    select,
)
from polychromic.stats.ranking import pareto_mask, pareto_rank

ROOT = Path(__file__).resolve().parent.parent
_json = write_json_file


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_study(tmp_path_factory.mktemp("studies"))


@pytest.fixture(scope="module")
def cli() -> Any:
    return load_cli("leaderboard")


# --- Pareto ------------------------------------------------------------------------------------


def test_pareto_mask_constructed_cases() -> None:
    df = pd.DataFrame({"q": [0.40, 0.45, 0.30, 0.30, np.nan, 0.45],
                       "d": [0.50, 0.55, 0.80, 0.70, 0.99, 0.55]})
    # row 4 would dominate everything on d but has no q: never optimal, never dominates
    # rows 1 and 5 tie exactly: both optimal
    assert pareto_mask(df, [("q", "max"), ("d", "max")]).tolist() == [
        False, True, True, False, False, True]
    # minimizing d instead: low d is good, so row 0 (0.50) beats everything except q-better 1/5
    assert pareto_mask(df, [("q", "max"), ("d", "min")]).tolist() == [
        True, True, False, False, False, True]
    # one objective: the best value (ties included)
    assert pareto_mask(df, [("q", "max")]).tolist() == [False, True, False, False, False, True]
    assert pareto_rank(df, [("q", "max"), ("d", "max")]).tolist() == [2, 1, 1, 2, np.inf, 1]
    assert pareto_mask(df.iloc[:0], [("q", "max")]).tolist() == []
    with pytest.raises(ValueError, match="mode"):
        pareto_mask(df, [("q", "up")])
    with pytest.raises(ValueError, match="not a column"):
        pareto_mask(df, [("nope", "max")])


def test_pareto_mask_equals_brute_force_definition() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = rng.integers(0, 4, size=(12, 3)).astype(float)
        values[rng.random((12, 3)) < 0.1] = np.nan
        df = pd.DataFrame(values, columns=["a", "b", "c"])
        objectives = [("a", "max"), ("b", "min"), ("c", "max")]
        signed = values * np.array([1, -1, 1])
        expected = []
        for i in range(12):
            if np.isnan(signed[i]).any():
                expected.append(False)
                continue
            others = [j for j in range(12) if j != i and not np.isnan(signed[j]).any()]
            expected.append(not any((signed[j] >= signed[i]).all() and (signed[j] > signed[i]).any()
                                    for j in others))
        assert pareto_mask(df, objectives).tolist() == expected


# --- loading, ordering, cost -------------------------------------------------------------------


def test_table_sorted_by_objectives_with_pareto_marker(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    df = study.frame
    assert study.objectives == [("semantic_diversity", "max"), ("pass@1", "max")]
    assert study.axes == [("pass@1", "max"), ("semantic_diversity", "max")]
    assert df["trial_id"].tolist() == DEFAULT_ORDER
    assert set(df.loc[df["pareto"], "trial_id"]) == {"aaaa1111", "bbbb2222"}
    status = dict(zip(df["trial_id"], df["status_text"], strict=True))
    assert status["dddd4444"] == "failed: torch.OutOfMemoryError: CUDA out of memory"
    assert status["eeee5555"] == "early-stopped"
    assert status["ffff6666"] == "running"
    assert status["base0000"] == "finished"
    # lead's delta columns may be absent: they exist (NaN) either way
    for col in ("delta_pass@1", "delta_pass@1_ci_low", "rel_delta_pass@1", "significant_pass@1"):
        assert col in df


def test_single_objective_study_pairs_quality_with_diversity(tmp_path: Path) -> None:
    study_dir = write_tiny_study(tmp_path)
    space = Path(json.loads((study_dir / "study.json").read_text())["space"])
    space.write_text(SPACE.replace("  - {metric: pass@1, mode: max}\n", ""))
    study = load_study(str(study_dir))
    assert study.objectives == [("semantic_diversity", "max")]
    assert study.axes == [("pass@1", "max"), ("semantic_diversity", "max")]
    assert study.frame["trial_id"].tolist()[:4] == ["bbbb2222", "cccc3333", "aaaa1111", "base0000"]
    assert set(study.frame.loc[study.frame["pareto"], "trial_id"]) == {"aaaa1111", "bbbb2222"}
    # the space file gone: defaults, and a note saying so
    space.unlink()
    study = load_study(str(study_dir))
    assert study.objectives == [("pass@1", "max"), ("semantic_diversity", "max")]
    assert any("unreadable" in n for n in study.notes)


@pytest.mark.parametrize("objectives", [1, 2])
def test_pareto_is_rank_one_everywhere(tmp_path: Path, cli: Any, objectives: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """One Pareto flag: ``pareto`` ⇔ ``pareto_rank == 1`` in the frame, the csv and the
    ``--trial`` view, for a two-objective study and a one-objective one (whose ★ is on quality
    vs diversity: its rank is too, not the rank on its single objective)."""
    study_dir = write_tiny_study(tmp_path)
    if objectives == 1:
        space = Path(json.loads((study_dir / "study.json").read_text())["space"])
        space.write_text(SPACE.replace("  - {metric: pass@1, mode: max}\n", ""))
    frame = load_study(str(study_dir)).frame
    assert (frame["pareto"] == (frame["pareto_rank"] == 1)).all()
    assert set(frame.loc[frame["pareto"], "trial_id"]) == {"aaaa1111", "bbbb2222"}
    assert frame.set_index("trial_id").loc["cccc3333", "pareto_rank"] == 2  # behind bbbb2222
    assert cli.main([str(study_dir), "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert (csv["pareto"] == (csv["pareto_rank"] == 1)).all()
    for tid, rank in (("bbbb2222", 1), ("cccc3333", 2), ("base0000", 2)):
        assert cli.main([str(study_dir), "--trial", tid]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("pareto"))
        assert line.split()[1:] == (["★", "yes", "(rank", "1)"] if rank == 1
                                    else ["no", "(rank", f"{rank})"]), (tid, line)


def test_gpu_hours_and_cost(study_dir: Path) -> None:
    df = load_study(str(study_dir)).frame.set_index("trial_id")
    assert df.loc["aaaa1111", "device"] == "gpu"
    assert df.loc["aaaa1111", "gpu_hours"] == pytest.approx(2.0)
    assert df.loc["aaaa1111", "cost_usd"] == pytest.approx(2.0 * DEFAULT_GPU_HOUR_PRICE)
    assert df.loc["base0000", "device"] == "cpu"
    assert df.loc["base0000", "gpu_hours"] == 0.0
    assert df.loc["bbbb2222", "device"] == "cpu?"  # use_gpu: auto, not recorded
    assert df.loc["bbbb2222", "gpu_hours"] == 0.0
    # no result yet: elapsed time from the last training report (early-stopped, running)
    assert df.loc["eeee5555", "gpu_hours"] == pytest.approx(600 / 3600)
    assert df.loc["ffff6666", "gpu_hours"] == pytest.approx(1200 / 3600)
    priced = load_study(str(study_dir), price=3.5, gpus_per_trial=2).frame.set_index("trial_id")
    assert priced.loc["aaaa1111", "cost_usd"] == pytest.approx(7.0)
    assert priced.loc["bbbb2222", "gpu_hours"] == pytest.approx(2.0)  # 1 h × 2 GPUs
    assert priced.loc["base0000", "gpu_hours"] == 0.0  # recorded CPU stays CPU


def test_reads_a_study_while_it_runs(tmp_path: Path) -> None:
    study_dir = write_tiny_study(tmp_path)
    late = study_dir / "trials" / "gggg7777"
    late.mkdir()  # a trial folder whose config is not written yet: not a row yet
    (study_dir / "trials" / "hhhh8888").mkdir()
    _json(study_dir / "trials" / "hhhh8888" / "config.json",
          TrialConfig.from_dict({"model": "tiny", "lambda_": 4.0}).to_dict())
    df = load_study(str(study_dir)).frame
    assert "gggg7777" not in set(df["trial_id"])
    row = df[df["trial_id"] == "hhhh8888"].iloc[0]
    assert row["status_text"] == "running"
    assert not row["pareto"]


# --- sort, top, filter --------------------------------------------------------------------------


def test_sort_top_filter(study_dir: Path) -> None:
    study = load_study(str(study_dir))
    ids = lambda df: df["trial_id"].tolist()  # noqa: E731
    assert ids(select(study, sort="pass@1"))[:4] == ["aaaa1111", "base0000", "bbbb2222", "cccc3333"]
    assert ids(select(study, sort="self_bleu"))[:4] == ["bbbb2222", "cccc3333", "aaaa1111", "base0000"]
    assert ids(select(study, sort="lambda_:desc"))[:3] == ["dddd4444", "cccc3333", "ffff6666"]
    assert ids(select(study, sort="lambda:asc", top=2)) == ["base0000", "aaaa1111"]
    assert ids(select(study, top=3)) == DEFAULT_ORDER[:3]
    assert ids(select(study, filter_text="lambda_>0.5")) == [
        "bbbb2222", "cccc3333", "dddd4444", "ffff6666"]
    assert ids(select(study, filter_text="lambda_>0.5, pass@1>=0.3")) == ["bbbb2222", "cccc3333"]
    assert ids(select(study, filter_text="status==finished,pareto==true")) == [
        "bbbb2222", "aaaa1111"]
    assert ids(select(study, filter_text="pass@1!=0.3")) == ["aaaa1111", "base0000"]  # NaN ≠ match
    assert ids(select(study, filter_text="lambda_<=1e-1", sort="lambda_")) == ["base0000", "aaaa1111"]


@pytest.mark.parametrize("text, message", [
    ("lambda_>>1", "not a number"),
    ("__import__('os').system('true')", "cannot parse"),
    ("lambda_>abc", "not a number"),
    ("lambda_>0.5,", "empty term"),
    ("lamda_>0.5", "did you mean lambda_"),
    ("status>1", "not numeric"),
])
def test_bad_filters_are_refused(study_dir: Path, text: str, message: str) -> None:
    study = load_study(str(study_dir))
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_filter(study.frame, text)


def test_filter_parser_never_evaluates() -> None:
    conds = parse_filter("pass@1>=0.5,lambda_!=0,status==finished")
    assert [(c.column, c.op, c.value) for c in conds] == [
        ("pass@1", ">=", 0.5), ("lambda_", "!=", 0.0), ("status", "==", "finished")]


# --- formats -------------------------------------------------------------------------------------


def test_every_format_parses_back(study_dir: Path, cli: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    study = load_study(str(study_dir))
    expected = study.frame.set_index("trial_id")

    def check(df: pd.DataFrame) -> None:
        assert df["trial_id"].astype(str).tolist() == DEFAULT_ORDER
        got = df.set_index(df["trial_id"].astype(str))
        for tid in DEFAULT_ORDER:
            assert bool(got.loc[tid, "pareto"]) == bool(expected.loc[tid, "pareto"])
            a, b = float(got.loc[tid, "pass@1"]), float(expected.loc[tid, "pass@1"])
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)
            assert float(got.loc[tid, "cost_usd"]) == pytest.approx(expected.loc[tid, "cost_usd"])

    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"board.{fmt}"
        assert cli.main([str(study_dir), "--format", fmt, "-o", str(out)]) == 0
        if fmt == "csv":
            check(pd.read_csv(out))
        elif fmt == "json":
            records = json.loads(out.read_text())
            assert isinstance(records, list) and len(records) == len(TRIALS)
            check(pd.DataFrame(records))
        else:
            check(pd.read_parquet(out))
    capsys.readouterr()
    assert cli.main([str(study_dir), "--format", "csv"]) == 0  # stdout too
    check(pd.read_csv(io.StringIO(capsys.readouterr().out)))

    assert cli.main([str(study_dir), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    table = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert re.fullmatch(r"\|(:?-+:?\|)+", table[1])
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert all(len(r) == len(header) for r in rows)
    assert [r[header.index("trial_id")] for r in rows] == DEFAULT_ORDER
    stars = {r[header.index("trial_id")] for r in rows if r[header.index("★")] == "★"}
    assert stars == {"aaaa1111", "bbbb2222"}
    assert rows[1][header.index("pass@1")] == "0.45"
    assert "$2.00/GPU-hour" in text


def test_render_with_delta_columns(study_dir: Path) -> None:
    """When the leaderboard provides deltas and CIs, they appear (with * when significant)."""
    study = load_study(str(study_dir))
    df = study.frame.copy()
    df["delta_pass@1"] = df["pass@1"] - 0.40
    df["delta_pass@1_ci_low"] = df["delta_pass@1"] - 0.02
    df["delta_pass@1_ci_high"] = df["delta_pass@1"] + 0.02
    df["significant_pass@1"] = df["delta_pass@1"].abs() > 0.03
    df["rel_delta_pass@1"] = np.nan
    text = render(dataclasses.replace(study, frame=df), df, "markdown", ["pass@1"])
    line = next(row for row in text.splitlines() if "| bbbb2222 |" in row)
    assert "-0.1 [-0.12, -0.08]*" in line
    line = next(row for row in text.splitlines() if "| aaaa1111 |" in row)
    assert "+0.05 [+0.03, +0.07]*" in line


def test_terminal_table(study_dir: Path, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The full (--wide) table; the default view is tested in test_terminal.py."""
    assert cli.main([str(study_dir), "--top", "3", "--gpu-hour-price", "4", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "study tiny: 3 of 7 trials" in out
    positions = [out.index(t) for t in DEFAULT_ORDER[:3]]
    assert positions == sorted(positions)
    assert "eeee5555" not in out
    assert "$4.00/GPU-hour" in out
    assert "0 (cpu)" in out and "★" in out


# --- HTML ----------------------------------------------------------------------------------------


def test_html_report_is_self_contained_and_has_every_trial(study_dir: Path, cli: Any,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert cli.main([str(study_dir), "--format", "csv", "-o", str(tmp_path / "x.csv"),
                     "--html", str(out)]) == 0
    page = out.read_text()
    for tid in TRIALS:
        assert f'<tr id="trial-{tid}"' in page
    thead = re.search(r"<thead>(.*?)</thead>", page, flags=re.S)[1].replace("<wbr>", "")
    for column in ("trial", "status", "λ", "pass@1", "semantic_diversity", "GPU-hours", "cost"):
        assert column in thead
    assert thead.count("<th") == 3 + 1 + 7 + 4
    for forbidden in ("http://", "https://", "<script", "<link", "src=", "@import"):
        assert forbidden not in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    # scatter + 7 headline metrics with values (no pass@10: 5 samples) + pass@k + 3 curves
    assert len(svgs) == 1 + 7 + 1 + 3
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    scatter = svgs[0]
    assert scatter.count("<path") == 2  # two Pareto stars
    assert "baseline" in scatter and "Pareto front" in scatter
    passk = svgs[8]
    for tid in ("bbbb2222", "aaaa1111", "cccc3333", "base0000"):
        assert f"{tid} (λ=" in passk
    # pass@1 of each curve equals the trial's pass@1 (from its generations.parquet)
    assert "bbbb2222 (λ=1): pass@1=0.3000" in passk
    assert f"pass@5={float(np.mean(pass_at_k(np.full(4, 5), np.array([2, 2, 1, 1]), 5))):.4f}" in passk
    curves = "".join(svgs[9:])
    for tid in TRIALS:  # every trial that reported has a training curve
        assert f"{tid} (λ=" in curves


def test_html_draws_ci_bars_when_present(study_dir: Path, tmp_path: Path) -> None:
    from polychromic.review.html_report import render_report

    study = load_study(str(study_dir))
    df = study.frame.copy()
    df["delta_pass@1"] = df["pass@1"] - 0.40
    df["delta_pass@1_ci_low"] = df["delta_pass@1"] - 0.05
    df["delta_pass@1_ci_high"] = df["delta_pass@1"] + 0.05
    page = render_report(dataclasses.replace(study, frame=df), df, metrics=["pass@1"])
    svg = re.findall(r"<svg.*?</svg>", page, flags=re.S)[1]
    assert svg.count('<g stroke="') == 3  # aaaa, bbbb, cccc have λ > 0 and a value
    assert "Δ vs baseline -0.1 [-0.15, -0.05]" in svg


def test_html_verdicts_headroom_and_mde(tmp_path: Path) -> None:
    """Verdict lines above the table, MDE beside each delta, and the headroom table with its
    plain sentence for a metric at the ceiling (the baseline's random embeddings are as
    diverse as the ceiling's unrelated texts)."""
    from polychromic.review.html_report import render_report

    study = load_study(str(write_tiny_study(tmp_path, headroom=True)))
    page = render_report(study, study.frame)
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Leaderboard</h2>")
    verdict = page[page.index("<h2>Verdict</h2>"):page.index("<h2>Leaderboard</h2>")]
    for lam in ("λ=0.1:", "λ=1:", "λ=3:"):
        assert lam in verdict
    assert 'href="#trial-aaaa1111"' in verdict and "CUDA out of memory" in verdict
    row = re.search(r'<tr id="trial-aaaa1111".*?</tr>', page, flags=re.S)[0]
    assert row.count("MDE ±") >= 6  # pass@1, pass@5, quality_mean, three per-prompt metrics
    headroom = page[page.index("<h2>Headroom</h2>"):page.index("<h2>Quality vs diversity</h2>")]
    assert re.search(r'title="semantic_diversity_per_prompt">sem div</td><td>0\.98', headroom)
    assert "at ceiling: the baseline is already about as diverse as unrelated texts" in headroom
    for header in ("baseline", "floor", "ceiling", "headroom"):
        assert f">{header}</th>" in headroom
    # no floor/ceiling recorded: said so, no table
    plain = load_study(str(write_tiny_study(tmp_path, name="plain")))
    page = render_report(plain, plain.frame)
    assert "so the headroom is unknown" in page


# --- errors ---------------------------------------------------------------------------------------


def test_missing_and_corrupt_study_give_one_line_errors(tmp_path: Path, cli: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "nope")]) == 2
    assert "no study" in one_line_error(capsys.readouterr().err)
    assert cli.main(["nope", "--storage-path", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err)

    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty")]) == 2
    assert "not a study folder" in one_line_error(capsys.readouterr().err)

    bad = write_tiny_study(tmp_path, "bad")
    (bad / "study.json").write_text("{not json")
    assert cli.main([str(bad)]) == 2
    assert "corrupt" in one_line_error(capsys.readouterr().err)

    broken = write_tiny_study(tmp_path, "broken")
    (broken / "trials" / "aaaa1111" / "config.json").write_text("[1, 2]")
    code = cli.main([str(broken)])
    _, err = capsys.readouterr()
    assert code in (0, 2)  # refused in one line, or the broken trial skipped
    if code == 2:
        one_line_error(err)
    assert "Traceback" not in err

    good = write_tiny_study(tmp_path, "good")
    assert cli.main([str(good), "--sort", "nope"]) == 2
    assert "unknown column" in one_line_error(capsys.readouterr().err)
    assert cli.main([str(good), "--top", "0"]) == 2
    one_line_error(capsys.readouterr().err)
    assert cli.main([str(good), "--filter", "pass@1>>0"]) == 2
    one_line_error(capsys.readouterr().err)


def test_missing_study_from_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "study" / "leaderboard.py"),
                           str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    one_line_error(proc.stderr)


# --- one notion of "significant" ------------------------------------------------------------------


def test_no_output_marks_significant_what_the_verdict_does_not(tmp_path: Path, cli: Any,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``*`` is the verdict's gain/loss (Holm-adjusted) in every output: the terminal (default,
    --wide, --trial), markdown, csv/json columns, the HTML report, the model card and the Optuna
    attributes; a delta significant for its comparison alone is ``†`` (or, in a column,
    ``significant_unadjusted_M``), never ``*``. The tiny study has both kinds (checked), so the
    test can fail."""
    from polychromic.core.config import TrialConfig
    from polychromic.export.card import model_card, trial_record
    from polychromic.review.html_report import render_report
    from polychromic.review.optuna_dashboard import trial_attrs
    from polychromic.review.study import compared_metrics
    from polychromic.stats.verdict import GAIN, LOSS, metric_outcome
    from polychromic.store.records import read_json

    monkeypatch.setenv("COLUMNS", "250")
    study_dir = write_tiny_study(tmp_path, headroom=True)
    study = load_study(str(study_dir))
    metrics = compared_metrics(study.frame)
    rows = {str(r["trial_id"]): r for _, r in study.frame.iterrows() if not r["is_baseline"]
            and pd.notna(r["delta_pass@1"])}
    claim = {(t, m): metric_outcome(r, m) in (GAIN, LOSS) for t, r in rows.items() for m in metrics}
    alone = {(t, m) for t, r in rows.items() for m in metrics
             if bool(r[f"significant_unadjusted_{m}"]) and not claim[t, m]}
    assert any(claim.values()) and alone  # both kinds occur: a "*" and a "†"

    def check(cells: dict[tuple[str, str], str], where: str) -> None:
        assert cells, where
        for key, text in cells.items():
            assert text.endswith("*") == claim[key], (where, key, text)
            assert text.endswith("†") == (key in alone), (where, key, text)

    # machine formats and Optuna attributes: significant_M is the verdict's
    for fmt_name in ("csv", "json"):
        assert cli.main([str(study_dir), "--format", fmt_name]) == 0
        out = capsys.readouterr().out
        got = (pd.read_csv(io.StringIO(out)) if fmt_name == "csv"
               else pd.DataFrame(json.loads(out))).set_index("trial_id")
        for t, m in claim:
            assert bool(got.loc[t, f"significant_{m}"]) == claim[t, m], (fmt_name, t, m)
            assert bool(got.loc[t, f"significant_unadjusted_{m}"]) == (
                claim[t, m] or (t, m) in alone)
    for t, r in rows.items():
        attrs = trial_attrs(r, metrics)
        for m in metrics:
            assert attrs.get(f"significant_{m}", False) == claim[t, m], (t, m)
    # markdown: the "Δ M" cells
    assert cli.main([str(study_dir), "--format", "markdown", "--metrics", ",".join(metrics)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| ")]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    cells = {}
    for line in lines[2:]:
        values = [v.strip() for v in line.strip("|").split("|")]
        if values[1] in rows:
            cells.update({(values[1], h[2:]): v for h, v in zip(header, values, strict=True)
                          if h.startswith("Δ ") and v})
    check(cells, "markdown")
    # the terminal's --trial view: the Δ cell of each metric's line (the line ends with M)
    for t in rows:
        assert cli.main([str(study_dir), "--trial", t]) == 0
        out = capsys.readouterr().out
        seen = 0
        for line in out.splitlines():
            words = line.split()
            if words and words[-1] in metrics and len(words) > 3 and words[0] != "verdict":
                seen += 1
                assert ("*" in line) == claim[t, words[-1]], (t, line)
                assert ("†" in line) == ((t, words[-1]) in alone), (t, line)
        assert seen == len(metrics), out
    # the default and --wide terminal tables: every * / † belongs to a marked delta
    for extra in ([], ["--wide"]):
        assert cli.main([str(study_dir), "--metrics", ",".join(metrics), *extra]) == 0
        out = capsys.readouterr().out
        table = out[:out.index("vs the λ=0 baseline")]
        assert table.count("*") == sum(claim.values()) and table.count("†") == len(alone), extra
    # the HTML table: marks per row
    page = render_report(study, study.frame, metrics)
    for t in rows:
        row_html = re.search(rf'<tr id="trial-{t}".*?</tr>', page)[0]
        assert row_html.count("*</span>") == sum(claim[t, m] for m in metrics), t
        assert row_html.count("†</span>") == sum((t, m) in alone for m in metrics), t
    # the model card of every trial
    for t, r in rows.items():
        cfg = TrialConfig.from_dict(read_json(study.trial_dir(t) / "config.json"))
        record = trial_record(study, r, cfg, "adapter", Path("/nowhere"),
                              {"prompt": "Hi", "new_tokens": 8, "output": "x"}, [])
        card = model_card(study, r, cfg, "adapter", record)
        got = {}
        table = card[card.index("| metric | this trial |"):card.index("MDE = minimum")]
        for line in table.splitlines():
            values = [v.strip() for v in line.strip("|").split("|")]
            if len(values) == 6 and values[0] in metrics and values[3] not in ("—", ""):
                got[(t, values[0])] = values[3]
        check(got, f"card {t}")
        assert (record["deltas_vs_baseline"]["self_bleu"]["significant"] is True) == \
            claim[t, "self_bleu"]


# --- short errors ---------------------------------------------------------------------------------


def test_column_and_direction_errors_are_short_and_name_the_mistake(
        study_dir: Path, cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown column: one short line with the 3 closest names (not every column name);
    ``--metrics list`` prints them all; a bad ``--sort``/``--by`` direction names the
    direction; an output in a folder that cannot be created names the user's path."""
    assert cli.main([str(study_dir), "--sort", "pass@l"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith("error: command line: --sort: unknown column 'pass@l' (did you mean ")
    assert line.endswith("? --metrics list prints every column)") and len(line) < 200
    assert len(re.search(r"did you mean (.*)\?", line)[1].split(", ")) <= 3
    assert cli.main([str(study_dir), "--metrics", "list"]) == 0
    listed = [x.split()[0] for x in capsys.readouterr().out.splitlines()]
    frame = load_study(str(study_dir)).frame
    assert sorted(listed) == sorted(map(str, frame.columns))
    assert listed.index("pass@1") < listed.index("delta_pass@1")  # derived columns last

    for args, option in ((["--sort", "pass@1:up"], "--sort"),
                         (["--sort", "lambda:downward"], "--sort")):
        assert cli.main([str(study_dir), *args]) == 2
        line = one_line_error(capsys.readouterr().err)
        direction = args[1].split(":")[1]
        assert line.startswith(f"error: command line: {option}: unknown direction "
                               f"'{direction}' in '{args[1]}': use ")
        assert "unknown column" not in line and ":asc or " in line
    from polychromic.core.errors import ConfigError
    from polychromic.review.study import choose_trial

    with pytest.raises(ConfigError, match="--by: unknown direction 'up'"):
        choose_trial(load_study(str(study_dir)), by="pass@1:up")
    assert cli.main([str(study_dir), "--sort", "pass@1:asc"]) == 0  # the right ones still work
    capsys.readouterr()

    # /proc takes no new file nor folder, even for root: the write fails late, after the
    # checks; the error names the user's path, not the temporary file beside it
    for option, target in (("--html", "/proc/r.html"), ("--html", "/proc/new/r.html"),
                           ("-o", "/proc/r.md"), ("-o", "/proc/new/r.md")):
        assert cli.main([str(study_dir), option, target]) == 2
        line = one_line_error(capsys.readouterr().err)
        assert line.startswith(f"error: {target}: (file): "), line
        assert ".tmp" not in line
