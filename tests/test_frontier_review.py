"""The leaderboard against the baseline's temperature frontier: a synthetic study folder with
and without the baseline's ``frontier.parquet`` (``polychromic.review.frontier``)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_generations, write_tiny_study

from polychromic.metrics.aggregate import aggregate
from polychromic.review.frontier import NOT_MEASURED, SAME_ENCODER, position
from polychromic.review.leaderboard import build_leaderboard
from polychromic.review.study import load_study
from polychromic.review.terminal import print_table, print_trial
from polychromic.stats.frontier import frontier_at, gain_column
from polychromic.stats.multiplicity import holm_reject
from polychromic.stats.verdict import frontier_clause
from polychromic.store import layout

#: the baseline's pass@1 at each frontier temperature (its eval temperature 1.0 included)
FRONTIER = {0.5: 0.6, 0.7: 0.5, 1.0: 0.4, 1.2: 0.2}


def _with_frontier(root: Path) -> Path:
    study = write_tiny_study(root, "front")
    base = layout.trial_dir(study, "base0000")
    parts = [tiny_generations(p1, 10 + i).assign(eval_temperature=t)
             for i, (t, p1) in enumerate(FRONTIER.items())]
    pd.concat(parts, ignore_index=True).to_parquet(base / layout.FRONTIER, index=False)
    return study


@pytest.fixture(scope="module")
def frontier_board(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return build_leaderboard(_with_frontier(tmp_path_factory.mktemp("frontier")))


def test_leaderboard_gets_the_frontier_columns(frontier_board: pd.DataFrame) -> None:
    df = frontier_board.set_index("trial_id")
    assert (df["frontier_temperatures"] == "0.5, 0.7, 1, 1.2").all()
    # the baseline's best temperature for pass@1, by hand: 0.6 at T=0.5
    assert np.allclose(df["pass@1_best_T"], 0.6)
    assert (df["pass@1_best_T_temperature"] == 0.5).all()
    # aaaa1111 (pass@1 0.45): 0.45 − 0.6
    row = df.loc["aaaa1111"]
    assert row["delta_pass@1_vs_best_T"] == pytest.approx(0.45 - 0.6)
    assert row["delta_pass@1_vs_best_T_ci_low"] <= row["delta_pass@1_vs_best_T"] <= row[
        "delta_pass@1_vs_best_T_ci_high"]
    assert math.isnan(df.loc["base0000", "delta_pass@1_vs_best_T"])
    # pass@1 0.45 lies inside the baseline's range [0.2, 0.6]: the gain in semantic
    # diversity at equal pass@1 has a number, an interval around it and a defined share
    g = gain_column("semantic_diversity_per_prompt", "pass@1")
    assert math.isfinite(row[g]) and row[f"{g}_ci_low"] <= row[g] <= row[f"{g}_ci_high"]
    assert 0 < row["frontier_defined_semantic_diversity_per_prompt_at_pass@1"] <= 1
    assert row["frontier_matched_T_semantic_diversity_per_prompt_at_pass@1"] == pytest.approx(
        0.7 + 0.3 * (0.45 - 0.5) / (0.4 - 0.5))
    assert "vs temperature: " in row["verdict"]
    # the verdict's short clause: pass@1 against the baseline's best temperature, with its
    # interval; the full clause (--trial, --wide) names it as before
    lo, hi = row["delta_pass@1_vs_best_T_ci_low"], row["delta_pass@1_vs_best_T_ci_high"]
    assert f"pass@1 -0.15 [{lo:+.3g}, {hi:+.3g}] vs best T 0.5" in row["verdict"]
    assert row["verdict"].endswith(frontier_clause({**row.to_dict(), "trial_id": "aaaa1111"}))
    assert "vs the baseline's best temperature: pass@1 -0.15" in frontier_clause(row, full=True)
    # Holm over the study's compared trials, per frontier column, as for every delta: the
    # adjusted flag sits beside each p-value and the baseline is never compared
    for col in (g, "pass@1_vs_best_T"):
        p = df[f"p_value_{col}"].to_numpy(dtype=float)
        assert np.isnan(df.loc["base0000", f"p_value_{col}"])
        assert 0 <= row[f"p_value_{col}"] <= 1
        assert df[f"significant_{col}"].tolist() == list(holm_reject(p)), col
    # verdict_full (--trial, --wide, HTML): the same line with the whole clause, computed once
    # by the leaderboard from the same row
    head = row["verdict"][: row["verdict"].index("vs temperature: ")]
    assert row["verdict_full"] == head + frontier_clause(row, full=True)
    assert df.loc["base0000", "verdict_full"] == ""


def test_gain_matches_the_hull_by_hand(tmp_path: Path) -> None:
    study = _with_frontier(tmp_path)
    df = build_leaderboard(study).set_index("trial_id")
    base = layout.trial_dir(study, "base0000")
    front = pd.read_parquet(base / layout.FRONTIER)
    pts = {t: aggregate(g.drop(columns="eval_temperature"))
           for t, g in front.groupby("eval_temperature")}
    q = np.array([pts[t]["pass@1"] for t in sorted(pts)])
    d = np.array([pts[t]["semantic_diversity_per_prompt"] for t in sorted(pts)])
    trial = aggregate(pd.read_parquet(layout.trial_dir(study, "cccc3333") / layout.GENERATIONS))
    # the frontier at pass@1 0.30: linear between T=1.0 (0.4) and T=1.2 (0.2) unless the
    # monotone upper hull passes above that chord
    order = np.argsort(q)
    hull = max(float(np.interp(0.30, q[order], d[order])), *(d[q >= 0.30]))
    assert float(frontier_at(q, d, np.array(0.30))) >= hull - 1e-12
    expected = trial["semantic_diversity_per_prompt"] - float(frontier_at(q, d, np.array(0.30)))
    assert df.loc["cccc3333", gain_column("semantic_diversity_per_prompt", "pass@1")] == \
        pytest.approx(expected)


def test_study_without_the_frontier_says_not_measured(tmp_path: Path) -> None:
    study = write_tiny_study(tmp_path, "old")
    df = build_leaderboard(study)
    assert (df["frontier_temperatures"] == "not measured").all()
    assert df[gain_column("semantic_diversity_per_prompt", "pass@1")].isna().all()
    assert not df["verdict"].str.contains("vs temperature").any()
    assert NOT_MEASURED in df.attrs["notes"]
    loaded = load_study("old", tmp_path)
    assert NOT_MEASURED in loaded.notes
    # the task of the tiny study is chitchat: the same-encoder note is printed once
    assert loaded.notes.count(SAME_ENCODER) == 1


def test_outside_the_range_names_the_temperature() -> None:
    row = {gain_column("semantic_diversity_per_prompt", "pass@1"): float("nan"),
           gain_column("pass@1", "semantic_diversity_per_prompt"): float("nan"),
           "frontier_range_semantic_diversity_per_prompt_at_pass@1":
               "outside the baseline's range (T ∈ [0.4, 1]): pass@1 0.55 is above every "
               "temperature's; no temperature of the sweep reaches it: the baseline's pass@1 "
               "peaks at T=0.55"}
    pairs = [("pass@1", "semantic_diversity_per_prompt")]
    clause = frontier_clause(row, pairs=pairs, full=True)
    assert clause.startswith("vs temperature: outside the baseline's range (T ∈ [0.4, 1])")
    assert "peaks at T=0.55 (semantic_diversity_per_prompt at equal pass@1)" in clause
    # the verdict's line claims nothing and points to the details
    assert frontier_clause({**row, "trial_id": "abcd1234"}, pairs=pairs) == (
        "vs temperature: no claim against the frontier (details: --trial abcd1234)")


def test_clause_outcomes() -> None:
    g = gain_column("semantic_diversity_per_prompt", "pass@1")
    pairs = [("pass@1", "semantic_diversity_per_prompt")]
    above = {g: 0.057, f"{g}_ci_low": 0.003, f"{g}_ci_high": 0.110, f"mde_{g}": 0.07,
             "frontier_defined_semantic_diversity_per_prompt_at_pass@1": 0.99}
    assert frontier_clause(above, pairs=pairs, full=True) == (
        "vs temperature: above the frontier: semantic_diversity_per_prompt at equal pass@1 "
        "+0.057 [+0.003, +0.11]")
    # the verdict's short clause: the claim with its interval, no pointer (nothing more to see)
    assert frontier_clause(above, pairs=pairs) == (
        "vs temperature: above the frontier (semantic_diversity_per_prompt +0.057 [+0.003, "
        "+0.11] at equal pass@1)")
    on = {**above, g: 0.009, f"{g}_ci_low": -0.01, f"{g}_ci_high": 0.033, f"mde_{g}": 0.05,
          "frontier_matched_T_semantic_diversity_per_prompt_at_pass@1": 0.97}
    assert "on the frontier: semantic_diversity_per_prompt at equal pass@1 (like λ=0 at " \
        "T≈0.97; MDE ±0.05)" in frontier_clause(on, pairs=pairs, full=True)
    assert frontier_clause(on, pairs=pairs) == (
        "vs temperature: on the frontier (semantic_diversity_per_prompt at equal pass@1) "
        "(details: --trial ID)")
    edge = {**above, "frontier_defined_semantic_diversity_per_prompt_at_pass@1": 0.77,
            "frontier_range_semantic_diversity_per_prompt_at_pass@1":
                "near the edge of the baseline's range (T ∈ [0.4, 1]): …"}
    clause = frontier_clause(edge, pairs=pairs, full=True)
    assert "near the edge" in clause and "defined in 77% of resamples" in clause
    assert "above the frontier" not in clause
    # an interval that excludes 0 but does not survive Holm over the study's trials is no
    # claim: "cannot tell" in the whole clause, nothing in the line, grey in the plot
    lucky = {**above, f"significant_{g}": False}
    assert "cannot tell against the frontier: semantic_diversity_per_prompt at equal pass@1" \
        in frontier_clause(lucky, pairs=pairs, full=True)
    assert frontier_clause(lucky, pairs=pairs) == (
        "vs temperature: no claim against the frontier (details: --trial ID)")
    assert position(lucky, "pass@1", "semantic_diversity_per_prompt") == ""
    assert frontier_clause({**above, f"significant_{g}": True}, pairs=pairs) == \
        frontier_clause(above, pairs=pairs)
    # near the edge is no claim: the short clause says so, never "above", nor does the plot
    assert position(edge, "pass@1", "semantic_diversity_per_prompt") == ""
    assert position(above, "pass@1", "semantic_diversity_per_prompt") == "above"
    assert position(on, "pass@1", "semantic_diversity_per_prompt") == "on"
    assert frontier_clause(edge, pairs=pairs) == (
        "vs temperature: no claim against the frontier (details: --trial ID)")
    # pass@k against the baseline's best temperature: in the line where its interval
    # excludes 0 (a claim), else only in the whole clause
    best = {"delta_pass@1_vs_best_T": 0.13, "delta_pass@1_vs_best_T_ci_low": 0.05,
            "delta_pass@1_vs_best_T_ci_high": 0.21, "pass@1_best_T_temperature": 0.55,
            "delta_pass@10_vs_best_T": 0.0, "delta_pass@10_vs_best_T_ci_low": -0.02,
            "delta_pass@10_vs_best_T_ci_high": 0.03, "pass@10_best_T_temperature": 1.0}
    assert frontier_clause({**above, **best}, pairs=pairs) == (
        "vs temperature: above the frontier (semantic_diversity_per_prompt +0.057 [+0.003, "
        "+0.11] at equal pass@1); pass@1 +0.13 [+0.05, +0.21] vs best T 0.55 (details: "
        "--trial ID)")
    assert "pass@10 0 [-0.02, +0.03] (T=1)" in frontier_clause({**above, **best}, pairs=pairs,
                                                               full=True)
    # pass@1's interval excludes 0, but after Holm over the study's trials it is no claim
    assert "vs best T" not in frontier_clause(
        {**above, **best, "significant_pass@1_vs_best_T": False}, pairs=pairs)
    # two claims on the same metric: named once, each X with its own interval
    g2 = gain_column("semantic_diversity_per_prompt", "quality_mean")
    two = {**above, g2: 0.04, f"{g2}_ci_low": 0.01, f"{g2}_ci_high": 0.07, f"mde_{g2}": 0.05,
           "frontier_defined_semantic_diversity_per_prompt_at_quality_mean": 1.0}
    assert frontier_clause(two, pairs=[*pairs, ("quality_mean", "semantic_diversity_per_prompt")]
                           ) == ("vs temperature: above the frontier (semantic_diversity_per_prompt"
                                 " at equal pass@1 +0.057 [+0.003, +0.11], quality_mean +0.04 "
                                 "[+0.01, +0.07])")
    below = {**above, g: -0.057, f"{g}_ci_low": -0.11, f"{g}_ci_high": -0.003}
    assert frontier_clause(below, pairs=pairs) == (
        "vs temperature: below the frontier (semantic_diversity_per_prompt -0.057 [-0.11, "
        "-0.003] at equal pass@1)")
    # self-BLEU: lower is better, a negative gain is above the frontier
    sb = gain_column("self_bleu_per_prompt", "pass@1")
    low = {sb: -0.05, f"{sb}_ci_low": -0.08, f"{sb}_ci_high": -0.02, f"mde_{sb}": 0.03,
           "frontier_defined_self_bleu_per_prompt_at_pass@1": 1.0}
    assert frontier_clause(low, pairs=[("pass@1", "self_bleu_per_prompt")],
                           full=True).startswith(
        "vs temperature: above the frontier: self_bleu_per_prompt")
    assert frontier_clause(low, pairs=[("pass@1", "self_bleu_per_prompt")]).startswith(
        "vs temperature: above the frontier (self_bleu_per_prompt -0.05 [-0.08, -0.02]")


def _recorded(fn, *args, width: int = 200, **kwargs) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    fn(*args, console=console, **kwargs)
    return console.export_text()


def test_terminal_wide_and_trial_show_the_frontier(tmp_path: Path) -> None:
    _with_frontier(tmp_path)
    study = load_study("front", tmp_path)
    out = _recorded(print_trial, study, "aaaa1111")
    assert "vs the λ=0 baseline's temperature frontier (T = 0.5, 0.7, 1, 1.2" in out
    assert "pass@1 vs best T" in out and "baseline's best: 0.6 at T=0.5" in out
    assert "sem div at equal pass@1" in out and "matched T≈0.85" in out
    # --trial and --wide carry the whole frontier clause the default view's line leaves out
    row = study.frame.set_index("trial_id").loc["aaaa1111"]
    full = frontier_clause(row, full=True)
    assert full != frontier_clause(row) and "vs the baseline's best temperature" in full
    assert " ".join(full.split()) in " ".join(out.replace("verdict ", "").split())
    wide = _recorded(print_table, study, study.frame, width=600, wide=True, stacked=False)
    assert "pass@1 vs best T" in wide and "sem div @ pass@1 vs T" in wide
    assert "-0.15" in wide
    assert " ".join(full.split()) in " ".join(wide.split())
    compact = " ".join(_recorded(print_table, study, study.frame, width=600).split())
    assert " ".join(full.split()) not in compact and "(details: --trial aaaa1111)" in compact
    old = write_tiny_study(tmp_path, "old")
    assert old.is_dir()
    study = load_study("old", tmp_path)
    out = _recorded(print_trial, study, "aaaa1111")
    assert "frontier: not measured" in out and "temperature frontier (T" not in out
    wide = _recorded(print_table, study, study.frame, width=600, wide=True, stacked=False)
    assert "vs best T" not in wide and "frontier: not measured" in wide


def test_html_plot_draws_the_baseline_temperature_curve(tmp_path: Path) -> None:
    from polychromic.review.html_report import FRONTIER_COLORS, render_report

    _with_frontier(tmp_path)
    study = load_study("front", tmp_path)
    page = render_report(study, study.frame)
    plot = page[page.index("<h2>Quality vs diversity</h2>"):page.index("<h2>Metrics vs λ</h2>")]
    for t in FRONTIER:
        assert f">T={t:g}</text>" in plot
    assert "the λ=0 baseline at each frontier temperature" in plot
    assert "against the baseline&#x27;s frontier" in plot
    assert "(not judged against the baseline" in plot  # corpus semantic_diversity: no pair
    assert any(c in plot for c in FRONTIER_COLORS.values())
    old = write_tiny_study(tmp_path, "old")
    assert old.is_dir()
    page = render_report(load_study("old", tmp_path), load_study("old", tmp_path).frame)
    plot = page[page.index("<h2>Quality vs diversity</h2>"):page.index("<h2>Metrics vs λ</h2>")]
    assert ">T=" not in plot and "against the baseline" not in plot


def test_html_plot_colours_trials_on_a_headline_pair(tmp_path: Path) -> None:
    from polychromic.review.html_report import FRONTIER_COLORS, render_report

    _with_frontier(tmp_path)
    space = tmp_path / "front_space.yaml"
    space.write_text(space.read_text().replace("metric: semantic_diversity,",
                                               "metric: semantic_diversity_per_prompt,"))
    study = load_study("front", tmp_path)
    assert study.axes[1][0] == "semantic_diversity_per_prompt"
    page = render_report(study, study.frame)
    plot = page[page.index("<h2>Quality vs diversity</h2>"):page.index("<h2>Metrics vs λ</h2>")]
    assert "not judged" not in plot and "95% CI" in plot
    judged = [w for w in ("above", "on", "below", "cannot tell")
              if f"({w} against the baseline&#x27;s frontier)" in plot]
    assert judged
    assert FRONTIER_COLORS["on" if "on" in judged else ""] in plot


def test_optuna_attrs_carry_the_frontier_columns(frontier_board: pd.DataFrame) -> None:
    from polychromic.review.frontier import frontier_columns
    from polychromic.review.optuna_dashboard import trial_attrs

    row = frontier_board.set_index("trial_id").loc["aaaa1111"].rename(None)
    row["trial_id"] = "aaaa1111"
    cols = frontier_columns(frontier_board.columns)
    assert "frontier_temperatures" in cols and "delta_pass@1_vs_best_T_ci_low" in cols
    assert "pass@1_best_T_temperature" in cols and "delta_pass@1" not in cols
    attrs = trial_attrs(row, ["pass@1"])
    assert attrs["delta_pass@1_vs_best_T"] == pytest.approx(-0.15)
    assert attrs["pass@1_best_T_temperature"] == 0.5
    assert gain_column("semantic_diversity_per_prompt", "pass@1") in attrs


def test_own_temperatures_curve_and_holm_clause(tmp_path: Path) -> None:
    import re

    study = _with_frontier(tmp_path)
    own = layout.trial_dir(study, "bbbb2222")
    pd.concat([tiny_generations(0.5, 21).assign(eval_temperature=0.7),
               tiny_generations(0.3, 22).assign(eval_temperature=1.0)],
              ignore_index=True).to_parquet(own / layout.FRONTIER, index=False)
    df = build_leaderboard(study).set_index("trial_id")
    text = df.loc["bbbb2222", "frontier_curve_semantic_diversity_per_prompt_at_pass@1"]
    items = text.split("; ")
    assert [i.split(":")[0] for i in items] == ["T=0.7", "T=1"]
    for item in items:
        assert re.fullmatch(r"T=[\d.]+: ([+-][\d.e-]+ \[[+-][\d.e-]+, [+-][\d.e-]+\]"
                            r"( (above|below)\*?)?( \(defined in \d+%\))?|outside)", item), item
    assert df.loc["aaaa1111", "frontier_curve_semantic_diversity_per_prompt_at_pass@1"] == ""
    # --trial lists the trial's own curve, pair by pair; a trial without a sweep gets no block
    loaded = load_study("front", tmp_path)
    out = " ".join(_recorded(print_trial, loaded, "bbbb2222").split())
    assert "the trial sampled at the same temperatures" in out
    assert f"sem div at equal pass@1 {text}" in out
    assert "the trial sampled at" not in _recorded(print_trial, loaded, "aaaa1111")
    # the verdict names only what survives Holm over the trial's own temperatures
    row = {"frontier_curve_semantic_diversity_per_prompt_at_pass@1":
           "T=0.7: outside; T=0.85: +0.057 [+0.003, +0.11] above*; T=1: +0.009 [-0.01, +0.033]",
           "frontier_curve_distinct_2_per_prompt_at_pass@1": "T=0.85: +0.02 [+0.001, +0.04] above",
           gain_column("semantic_diversity_per_prompt", "pass@1"): float("nan")}
    clause = frontier_clause(row, full=True)
    assert clause == ("vs temperature: own temperatures (Holm over the trial's temperatures): "
                      "above the frontier at T=0.85 (semantic_diversity_per_prompt at equal "
                      "pass@1 +0.057 [+0.003, +0.11])")
    # the verdict's line keeps the Holm-significant claim, the list is behind --trial
    assert frontier_clause(row) == (
        "vs temperature: above the frontier at its own T=0.85 (semantic_diversity_per_prompt "
        "at equal pass@1 +0.057 [+0.003, +0.11], Holm) (details: --trial ID)")
    # two claims at the same own temperature: one clause naming both, not the clause twice
    row["frontier_curve_distinct_2_per_prompt_at_pass@1"] = "T=0.85: +0.02 [+0.001, +0.04] above*"
    assert frontier_clause(row) == (
        "vs temperature: above the frontier at its own T=0.85 (semantic_diversity_per_prompt "
        "at equal pass@1 +0.057 [+0.003, +0.11], distinct_2_per_prompt at equal pass@1 +0.02 "
        "[+0.001, +0.04], Holm) (details: --trial ID)")


def test_html_plot_draws_a_trial_own_curve(tmp_path: Path) -> None:
    from polychromic.review.html_report import render_report

    study = _with_frontier(tmp_path)
    pd.concat([tiny_generations(0.5, 21).assign(eval_temperature=0.7),
               tiny_generations(0.3, 22).assign(eval_temperature=1.0)],
              ignore_index=True).to_parquet(layout.trial_dir(study, "bbbb2222") / layout.FRONTIER,
                                            index=False)
    loaded = load_study("front", tmp_path)
    page = render_report(loaded, loaded.frame)
    plot = page[page.index("<h2>Quality vs diversity</h2>"):page.index("<h2>Metrics vs λ</h2>")]
    assert "bbbb2222 (λ=1) at each of its own temperatures" in plot
    assert "bbbb2222 (λ=1) at T=0.7" in plot and "bbbb2222 (λ=1) at T=1:" in plot
    assert "aaaa1111 (λ=0.1) at each of its own" not in plot
