"""The browser review app (`grader serve`): a web layer over the gradebook API, kept out of the grading core."""
