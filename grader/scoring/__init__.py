"""Vectors and rubric rules to marks: point matching (the credit rule), negations, gaming and
collusion checks, MCQs, the learned contradiction checks (concept_check, checker), flags, the grade
of a class, where it runs (engine), and how unsure each mark is (triage).

Imports `grader.exam` and `grader.embedding`."""
