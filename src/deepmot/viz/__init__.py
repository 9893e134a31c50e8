"""Pictures: frames with boxes, plots of training and assignment accuracy."""
