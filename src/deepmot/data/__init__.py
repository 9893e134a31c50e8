"""Data: sequences, synthetic scenes, training sets and samplers."""
