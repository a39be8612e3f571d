"""Learning from a TA's marks: the calibrator and its methods, marked answers as exemplars, which
answers to mark first, encoder fine-tuning, and agreement metrics (QWK, Pearson, MAE).

Imports the folders before it (exam, embedding, scoring, review: a calibration may learn from the
marks TAs set in a gradebook)."""
