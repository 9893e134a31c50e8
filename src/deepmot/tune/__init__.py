"""``deepmot tune``: Optuna over a tracker's management settings (:mod:`.study`)."""
