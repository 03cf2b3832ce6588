"""Evaluating an adapter: the Ray Data pipeline that samples, scores and stores every sample
(``pipeline``, its actors in ``actors``), or the same evaluation in the Train worker on the
model it just trained (``in_worker``).
"""
