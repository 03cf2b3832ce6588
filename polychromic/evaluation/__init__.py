"""Evaluating an adapter: the Ray Data pipeline that samples, scores and stores every sample
(``pipeline``).
"""
