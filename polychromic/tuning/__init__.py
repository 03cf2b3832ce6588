"""Running studies on Ray: ``runner`` (Tune + Optuna + ASHA), ``trial`` (one Ray Train run then
its evaluation), ``worker`` (what the Train worker runs), ``space`` (the search-space schema), ``search``, ``recorder``, ``resume``,
``plan`` (``--plan``), ``confirm``, ``rescore``, ``cost``.
"""
