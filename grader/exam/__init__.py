"""What the instructor brings: the rubric (questions, points, patterns), the class's answers, a TA's marks.

Reading and validating only; imports nothing from the folders after it."""
