"""Files for people and other systems: the results folder (marks, evidence, run.json), the HTML
report, LMS exports, student feedback, and agreement with human marks (`grader evaluate`)."""
