"""`python -m grader.cli ...`: the same as the `grader` command."""

from grader.cli.app import main

main(prog_name="grader")
