"""Readers and writers of file formats: MOTChallenge text files and sequence folders."""
