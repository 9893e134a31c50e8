"""The person detector Tracktor regresses with: config, model and loading, training, mAP."""
