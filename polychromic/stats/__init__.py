"""Pure statistics over per-prompt numbers (numpy in, numbers out): the paired bootstrap and
the two-level (seed, prompt) bootstrap, power/MDE, Holm, headroom, the verdict's wording and the
Pareto ranking/order of trials.
"""
