"""One trial's training: ``loop`` (read top to bottom), ``step`` (one SFT or diversity step),
``set_objective`` (the polychromic set objective and its leave-one-out advantages), ``batches``.
"""
