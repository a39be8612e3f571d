"""Building rubrics: a draft from an exam paper, a rubric from reference answers, and an optional
LLM's suggestions for them."""
