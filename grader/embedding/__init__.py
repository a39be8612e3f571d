"""Answers to vectors: segments of an answer, the sentence encoder (each distinct text once, batched,
cached on disk), and segment vectors pooled from one pass over each sentence.

Imports `grader.exam` only."""
