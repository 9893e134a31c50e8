"""What every trainer shares: the run folder and its log (:mod:`.run`), atomic checkpoints
(:mod:`.checkpoint`), ``torchrun`` start-up and process groups (:mod:`.distributed`), and reading
frames ahead in DataLoader workers (:mod:`.prefetch`).

The engine knows no tracker, loss or detector: it imports only ``io``, ``data`` and ``errors``.
"""
