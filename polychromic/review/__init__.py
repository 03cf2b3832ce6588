"""How a finished study is read and shown: ``leaderboard`` (one row per trial, deltas vs the
λ=0 baseline), ``study`` (loading, order, filter, choice of trial), ``format`` (cells and
captions), ``terminal``, ``html_report``, ``confirmation`` (selection vs confirmation),
``optuna_dashboard``. Reading a study imports no Ray and no torch.
"""
