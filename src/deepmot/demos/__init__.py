"""The end-to-end demos of ``deepmot demo``: the learned motion tracker (:mod:`.motion`),
Tracktor's fine-tuning (:mod:`.tracktor`) and Tracktor's ReID rows (:mod:`.tracktor_reid`)."""
