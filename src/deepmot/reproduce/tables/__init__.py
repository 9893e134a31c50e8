"""The registered tables of ``deepmot reproduce``, one module each."""
