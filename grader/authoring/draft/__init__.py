"""Draft a rubric from an exam paper as instructors write it (plain text or Markdown).

An instructor already has the paper with its keys and model answers; typing the rubric out again is
the slow part. `draft_rubric` reads the paper and returns a `Draft`: a valid `Rubric` plus notes on
what it was unsure of, which `draft_yaml` writes as `# check: ...` comments above the question or
point concerned. The draft is meant to be edited, not trusted: it never invents content.

What it reads
    Sections ("Beginner: 10 Marks", "Section A (10 marks)", "## Part B", "(1 mark each)"), numbered
    questions ("1.", "1)", "Q1.", "Question 1:"; numbering restarts per section or runs on), their
    marks ("1 Mark", "(2 marks)", "[2 marks]"), MCQ options inline ("(a) .. (b) ..") or one a line
    ("a)", "(A)", "A.", "- [ ] b)"), lettered sub-parts ("- (a) Why ...?") and the model answers
    after a question, in Markdown links, display math or "Answer:" lines.

MCQ keys
    A trailing letter on the question line (`**B**`, `[B](#)`, `... ? B`, `Ans: B`), a marked
    option (`**b)**`, `**(b) text**`, `(b) text ✓`, `- [x] b)`) or an answer line (`Answer: b`,
    `Ans: B`, `Key: (b)`, `Answer: b, d`). An MCQ with no key cannot be a valid rubric question, and
    guessing a key would silently mark right answers wrong, so it is written `void: true` (everyone
    gets the marks) with a `# check:` comment saying to set the key: valid, harmless, and loud.

Marks
    A question's own marks win; a section total is shared out among its questions that carry none
    (on a 0.5 grid, earlier questions taking any remainder), then the exam total among those left,
    else 1 mark each; a question's marks are shared among its unmarked sub-parts the same way. Every
    guess is a `# check:` comment.

Model answers become points, one claim each
    Sentences (brackets kept whole, so "(Cybenko, 1989; Hornik, 1991)" is not a break), bullet
    items and display formulas are the candidates. A sentence that only qualifies or illustrates the
    one before ("These regions ...", "However, ...", "Example: ...", "A well-known counterexample
    ...") is joined to it, and a lead-in ending in ':' to what follows: alone neither is a claim a
    marker could look for. A one-sentence answer to a question worth a mark or more is split at
    a consequence (", making ...", ", so ...", ", because ...", ", and it ...") and the split noted. A formula is its
    own point whose `patterns` regex matches its core in common spellings (sqrt/√/root, n_in/nin/
    n_{in}/fan_in, optional brackets); a citation ("DL Lecture 7 slide 32") is kept in the model
    answer, not made a point. A verdict ("No.") to a yes/no question becomes a point with patterns
    and contradictions; a yes/no question whose answer gives none is noted.

    The step is 0.5 when the points fit in whole steps of it, else 0.25; with more points than
    steps (or than `MAX_POINTS`), the shortest point is merged with its shorter neighbour until they
    fit. Marks are shared in whole steps, earlier points taking any remainder (noted).

Answer keys gathered at the end
    A heading ("Answer key", "Answers", "Solutions", "Marking scheme", "Memo", any case, `#`/`**`
    allowed) after the questions, followed by entries, is a key and never read as questions: `1. B`,
    `1) b`, `Q1: B`, `Q1 - (B)`, `1 B`, several a line (`1.B 2.C`, `1-B, 2-C`), several keys (`4. A, C`),
    a table (`| Q | Answer |`), model answers (`Q5: ...`, lines and paragraphs up to the next entry)
    and sub-parts (`5. (a) ... (b) ...`, `5(a) ...`). It fills only what the paper left empty: an
    inline key or answer wins, and a key that disagrees with it is noted. Entries find their question
    by the section the key names ("Section B, 1.", "B1", a sub-heading naming a section) or else by
    number; where a paper's numbering restarts per section, an unnamed number is read every way it
    could be (through the paper, in a section, restarting with the sections) and the reading that fits
    the questions best (MCQ letters to MCQs, text to short questions, numbers that exist) is taken; a
    tie is noted and not used, as is an entry naming no question.

Not read (yet): roman-numbered sub-parts ("(i)", "(ii)"), tables outside an answer key, answer keys
that repeat the questions, keys spread over the paper section by section, and answers given only as
images.

Modules, lowest first; none imports one after it, and none imports `grader.authoring.suggest` (which imports `record`):
`record` (the `Draft`), `markup` (Markdown and LaTeX to text), `lines` (what a line of a question says),
`structure` (sections and question blocks), `questions`, `answer_key`, `formulas`, `points`, `builder` (the
rubric), `paper` (the entry points), `writing` (the YAML).
"""

from grader.authoring.draft.builder import DEFAULT_MARKS
from grader.authoring.draft.formulas import formula_pattern
from grader.authoring.draft.paper import draft_rubric, read_paper
from grader.authoring.draft.record import TODO_ANSWER, TODO_POINT, Draft, Note, Section
from grader.authoring.draft.writing import draft_yaml

__all__ = [
    "DEFAULT_MARKS",
    "TODO_ANSWER",
    "TODO_POINT",
    "Draft",
    "Note",
    "Section",
    "draft_rubric",
    "draft_yaml",
    "formula_pattern",
    "read_paper",
]
