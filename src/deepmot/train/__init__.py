"""Training loops: the Deep Hungarian Net (:mod:`.dhn`) and its evaluation (:mod:`.dhn_eval`)."""
