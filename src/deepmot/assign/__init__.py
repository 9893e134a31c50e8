"""Assignment: exact Hungarian (:mod:`.hungarian`), the Deep Hungarian Net (:mod:`.dhn`) and
its accuracy measures (:mod:`.dhn_metrics`)."""
