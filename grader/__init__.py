"""grader: offline short-answer exam grading with sentence embeddings.

The library is the product; `grader.cli` is a thin command line over it.
"""

__version__ = "0.1.0"
