"""One grading run: a Rubric and Submissions in, Grades out. No files, no terminal.

MCQs are read and scored exactly. Short answers are graded a question at a time (in blocks of
ENCODE_BLOCK answers for very large classes): the question's distinct texts (the class's segments,
point texts, alternatives, the prompt) go to the encoder in one call, so each is encoded once, in
large length-sorted batches, and then matched as matrix products; what one block needed is dropped
before the next, so memory stays flat as the class grows.

Before the matching, the checks that read words take pairs out of the score matrix: a segment that
says the opposite of a phrasing (`grader.scoring.negation`), an answer that denies what its question takes for
granted (`grader.scoring.premise`: all its pairs) or turns the comparison it asks for around
(`grader.scoring.comparison`), a keyword list or an instruction to the grader
(`grader.scoring.gaming`). After it, each answer gets its flags (`grader.scoring.flags`): those checks, a sentence
too long for the model, an answer unlike every point, a near copy of another student's answer
(`grader.scoring.collusion`), and a mark near a rounding or credit boundary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grader.embedding.encoder import TextEncoder
from grader.embedding.segment import WINDOW_WORDS, overlong, segments
from grader.embedding.spans import pooled_segments, segment_mode
from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion
from grader.exam.submissions import Submissions
from grader.scoring import flags as flagging
from grader.scoring.checker import Contradicting, checked_opposite, describe, probability_of
from grader.scoring.collusion import near_copies
from grader.scoring.comparison import compared, reversals, withheld
from grader.scoring.comparison import explain as comparison_explain
from grader.scoring.concept_check import ConceptCheck, pair_table, question_phrasings, read_table
from grader.scoring.cross_reading import opposite_answers
from grader.scoring.flags import Flag, FlagCode
from grader.scoring.gaming import rubric_terms, screen
from grader.scoring.match import (
    DEFAULT_CURVE,
    TOPIC_WEIGHT,
    BestMatches,
    CreditCurve,
    PointMatch,
    QuestionVectors,
    best_matches,
    credits,
    point_matches,
    round_to_step,
    texts_to_encode,
)
from grader.scoring.mcq import read_choice, score_choice
from grader.scoring.negation import explain, opposed, polarity, verdict
from grader.scoring.premise import denial, premise
from grader.scoring.premise import explain as premise_explain
from grader.watcher import Progress

ENCODE_BLOCK = 16384
"""Answers to one question whose segments are encoded in one call and held at once. Duplicates sit
within a question (the same short answer, the same sentence), so each distinct text is still encoded
once in all but the largest classes, while memory stays bounded by the block, not the class."""
ANSWER_BLOCK = 4096
"""Answers matched per matrix product: bounds memory on large classes without slowing small ones."""
SCORE_SHIFT = 0.02
"""How far a match score may be off (the embedding's noise between paraphrases): a mark that a shift
this size in every point's score would change is flagged low-confidence."""
OFF_TOPIC_COSINE = 0.15
"""A non-blank answer none of whose segments reaches this cosine to any phrasing or to the prompt is off-topic
(unless a rubric pattern read it, or it is a bare verdict: "No." is an answer). On the development set
wrong but on-topic answers ("The model will overfit.") sit at 0.16 and up; chatter about dinner at 0.1."""
OFF_TOPIC_MIN_WORDS = 3


@dataclass(frozen=True)
class Neighbour:
    """A marked answer close to the one being graded: whose, its mark, how close (cosine)."""

    student_id: str
    mark: float
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        """The one serialised form (evidence.jsonl, the gradebook): the similarity to 4 digits."""
        return {"student_id": self.student_id, "mark": self.mark, "similarity": round(self.similarity, 4)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Neighbour:
        return cls(str(data["student_id"]), float(data["mark"]), float(data["similarity"]))


def describe_neighbours(neighbours: Sequence[Neighbour]) -> str:
    """The nearest marked answers in words, for a TA (review screen, flags sheet); "" when none."""
    if not neighbours:
        return ""
    return "nearest marked answers: " + ", ".join(
        f"{n.student_id} (mark {n.mark:g}, similarity {n.similarity:.2f})" for n in neighbours
    )


@dataclass(frozen=True)
class QuestionGrade:
    """One student's mark on one question, with what it rests on."""

    student_id: str
    question_id: str
    mark: float
    max_mark: float
    raw_mark: float
    """Before rounding to the question's step (equal to `mark` for MCQs)."""
    flags: tuple[Flag, ...] = ()
    choice: str | None = None
    """The MCQ letter read from the answer, or None."""
    points: tuple[PointMatch, ...] = ()
    words: int = 0
    """Length of the answer in words (a calibration feature)."""
    neighbours: tuple[Neighbour, ...] = ()
    """The nearest answers a TA marked, where a calibration leaned on them (`grader.calibration.exemplars`): for the
    TA's eyes only, never for student feedback (they are other students' answers)."""
    calibrated: bool = False
    """A calibration's fitted map made the mark, not a credit curve (so the points' credits do not add up
    to it). Known in memory while grading (triage reads it); run.json records the calibration itself."""
    concept_doubt: float | None = None
    """The concept check's P(the answer does not state the model answer correctly), the answer read
    whole (`grader.scoring.concept_check.answer_doubts`); None without that check. A calibration feature: on
    its own it changes no mark. Known in memory while grading, like `calibrated`."""


@dataclass(frozen=True)
class Grades:
    """Every mark of a run, student-major in rubric question order, and what produced them."""

    exam: str
    rubric_fingerprint: str
    model: str
    curve: CreditCurve
    students: tuple[str, ...]
    items: tuple[QuestionGrade, ...]
    segments: str = "separate"
    """How answer segments were embedded (`grader.embedding.spans.SegmentMode`): the marks depend on it."""
    checker: str | None = None
    """The learned contradiction checker that took points away beside the rules (`grader.scoring.checker.
    describe`), or None: the rules alone."""

    def by_student(self) -> Iterator[tuple[str, tuple[QuestionGrade, ...]]]:
        per = len(self.items) // len(self.students) if self.students else 0
        for i, student in enumerate(self.students):
            yield student, self.items[i * per : (i + 1) * per]

    def total(self, student_id: str) -> float:
        return sum(g.mark for g in self.items if g.student_id == student_id)


def grade(
    rubric: Rubric,
    submissions: Submissions,
    encoder: TextEncoder,
    curve: CreditCurve = DEFAULT_CURVE,
    progress: Progress | None = None,
    topic_weight: float = TOPIC_WEIGHT,
    negation: bool = True,
    checker: Contradicting | None = None,
) -> Grades:
    """Grade every student on every question of the rubric (see `grader.scoring.match` for the scoring).

    `progress(done, total)` counts short answers graded. `negation=False` skips the polarity mask
    (the matching as it was before it, for benchmarks). `checker` (`grader.scoring.checker`) also takes out
    the winning segments it reads as contradicting a point; a concept check with an `opposition` reads
    each answer whole instead, and one it reads as saying the opposite of its question earns no point
    (the rules still take single segments out). Without a checker, the rules alone do.
    """
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    students = list(submissions.students)
    total, done = len(shorts) * len(students), 0
    short_grades: dict[tuple[str, str], QuestionGrade] = {}
    for question in shorts:
        answers = {s: submissions.answer(s, question.id) for s in students}
        twins = near_copies({s: a for s, a in answers.items() if a.strip()}, question.model_answer)
        for start in range(0, len(students), ENCODE_BLOCK):
            block = students[start : start + ENCODE_BLOCK]
            short_grades.update(
                _grade_block(question, block, answers, twins, encoder, curve, topic_weight, negation, checker)
            )
            done += len(block)
            if progress is not None:
                progress(done, total)

    items = []
    for student in submissions.students:
        for question in rubric.questions:
            if isinstance(question, McqQuestion):
                items.append(_mcq_grade(student, question, submissions.answer(student, question.id)))
            elif (student, question.id) in short_grades:
                items.append(short_grades[(student, question.id)])
            else:
                items.append(QuestionGrade(student, question.id, 0.0, question.marks, 0.0, (flagging.blank(),)))
    return Grades(
        exam=rubric.exam,
        rubric_fingerprint=rubric.fingerprint,
        model=encoder.name,
        curve=curve,
        students=tuple(submissions.students),
        items=tuple(items),
        segments=segment_mode(encoder).value,
        checker=None if checker is None else describe(checker),
    )


def _grade_block(
    question: ShortQuestion,
    students: Sequence[str],
    answers: dict[str, str],
    twins: dict[str, list[tuple[str, float]]],
    encoder: TextEncoder,
    curve: CreditCurve,
    topic_weight: float,
    negation: bool,
    checker: Contradicting | None = None,
) -> dict[tuple[str, str], QuestionGrade]:
    """Grade one question for a block of students: segment, encode the distinct texts, match.

    Only this block's segments and vectors are held, so memory does not grow with the class.
    """
    pieces = {s: segments(answers[s]) for s in students}
    answered = [s for s in students if pieces[s]]
    if not answered:
        return {}
    rubric_texts = list(dict.fromkeys(texts_to_encode(question)))
    pooled = pooled_segments(encoder, [answers[s] for s in answered])
    if pooled is None:  # each distinct text encoded on its own
        unique = list(dict.fromkeys([*rubric_texts, *(t for s in answered for t in pieces[s])]))
        vectors = encoder.encode(unique)
    else:  # the rubric's texts, then each distinct answer's segments pooled from its sentences (grader.embedding.spans)
        unique = [*rubric_texts, *pooled.texts]
        vectors = np.concatenate([encoder.encode(rubric_texts), pooled.vectors])
    row = {text: i for i, text in enumerate(unique if pooled is None else rubric_texts)}
    polar = polarity(unique) if negation else None
    phrasings = QuestionVectors.build(question, lambda t: vectors[row[t]])
    phrasing_rows = [row[t] for p in question.points for t in p.phrasings]
    terms = rubric_terms(question)
    granted = premise(question.prompt) if negation else None
    things = compared(question.prompt) if negation else None
    screens = {s: screen(question, answers[s], pieces[s], terms) for s in answered}
    graded: dict[tuple[str, str], QuestionGrade] = {}
    concept = checker if isinstance(checker, ConceptCheck) else None
    opposition = concept.opposition if concept is not None else None
    question_texts = question_phrasings(question) if concept is not None else []
    for start in range(0, len(answered), ANSWER_BLOCK):
        block = answered[start : start + ANSWER_BLOCK]
        segs = [pieces[s] for s in block]
        seg_index = (
            [row[t] for ss in segs for t in ss]
            if pooled is None
            else pooled.index([answers[s] for s in block], len(rubric_texts))
        )
        opposite = opposed(polar.rows(seg_index), polar.rows(phrasing_rows)) if polar is not None else None
        denials = [denial(granted, answers[s]) for s in block]
        turned = reversals(things, question, [answers[s] for s in block])
        if any(denials) or any(turned):
            opposite = np.zeros((len(seg_index), len(phrasing_rows)), dtype=bool) if opposite is None else opposite
            at = np.concatenate([[0], np.cumsum([len(ss) for ss in segs])])
            for i, student in enumerate(block):
                if denials[i] is not None:  # it denies what its question takes for granted: no point
                    opposite[at[i] : at[i + 1]] = True
                elif turned[i] is not None:  # it turns the comparison around: see grader.scoring.comparison
                    opposite[at[i] : at[i + 1]] |= withheld(turned[i], question, answers[student])
        excluded = np.concatenate([screens[s].excluded for s in block])
        refuted, reversal, saying_opposite, doubts = None, None, None, None
        if concept is not None:  # each answer read whole: one pass over its pairs with the phrasings serves both checks
            written = [answers[s] for s in block]
            read = pair_table(question_texts, written)
            doubts = read_table(concept, read)  # the calibration's evidence (`QuestionGrade.concept_doubt`)
            if opposition is not None:
                saying_opposite, reversal = opposite_answers(concept, read, question_texts, written)
        if saying_opposite is not None:  # one that says the opposite of its question earns no point
            said = np.repeat(saying_opposite, [len(ss) for ss in segs])
            if said.any():
                opposite = np.zeros((len(said), len(phrasing_rows)), dtype=bool) if opposite is None else opposite
                opposite[said] = True
        elif checker is not None:
            texts = [t for p in question.points for t in p.phrasings]
            refuted = checked_opposite(
                checker, phrasings, texts, vectors[seg_index], segs, opposite, excluded, topic_weight, curve
            )
            opposite = refuted.opposite
        best = best_matches(vectors[seg_index], [len(ss) for ss in segs], phrasings, topic_weight, opposite, excluded)
        for i, student in enumerate(block):
            answer = answers[student]
            matches = point_matches(question, answer, segs[i], best, i, curve)
            if denials[i] is not None:  # flagged with the clause that denies it, the evidence a TA needs to see
                lost = [m.opposite is not None for m in matches]
                lost = lost if any(lost) else [k == 0 for k in range(len(matches))]
                matches = tuple(replace(m, opposite=denials[i]) if x else m for m, x in zip(matches, lost))
            elif turned[i] is not None:  # each point it reverses is flagged with the clause that does
                clause = turned[i].clause
                matches = tuple(replace(m, opposite=clause) if m.point_id in turned[i].points else m for m in matches)
            if refuted is not None:
                matches = tuple(
                    replace(m, opposite_probability=probability_of(refuted, i, k, m.opposite))
                    for k, m in enumerate(matches)
                )
            if saying_opposite is not None and saying_opposite[i]:
                probability = float(reversal[i])
                matches = tuple(replace(m, opposite_probability=probability) if m.opposite else m for m in matches)
            carried = _answer_flags(answer, matches, screens[student].flags, best, i, twins.get(student, ()))
            graded[(student, question.id)] = _short_grade(
                student, question, matches, len(answer.split()), carried, curve
            )
            if doubts is not None:
                graded[(student, question.id)] = replace(graded[(student, question.id)], concept_doubt=float(doubts[i]))
    return graded


def apply_curve(grades: Grades, rubric: Rubric, curve: CreditCurve) -> Grades:
    """Re-mark short answers under another credit curve without re-encoding (similarities are kept).

    Flags that follow from the mark are recomputed; the others (gaming, collusion, ...) are kept."""
    items = []
    for g in grades.items:
        question = rubric.question(g.question_id)
        if isinstance(question, ShortQuestion) and g.points:
            matches = tuple(replace(m, credit=m.credit_under(curve)) for m in g.points)
            carried = tuple(
                f for f in g.flags if f.code not in flagging.MARK_DEPENDENT and f.code != FlagCode.CONTRADICTION
            )
            g = _short_grade(g.student_id, question, matches, g.words, carried, curve)
        items.append(g)
    return replace(grades, curve=curve, items=tuple(items))


def _answer_flags(
    answer: str,
    matches: tuple[PointMatch, ...],
    screened: tuple[Flag, ...],
    best: BestMatches,
    row: int,
    twins: Sequence[tuple[str, float]],
) -> tuple[Flag, ...]:
    """The flags of one answer that do not depend on its mark."""
    found: list[Flag] = []
    words = overlong(answer)
    if words:
        found.append(flagging.too_long(words, WINDOW_WORDS))
    found += screened
    nearest = float(best.top_similarity[row].max()) if best.top_similarity is not None else 1.0
    if best.prompt_similarity is not None:
        nearest = max(nearest, float(best.prompt_similarity[row]))
    read = any(m.fixed_credit is not None for m in matches)
    if nearest < OFF_TOPIC_COSINE and not read and not verdict(answer) and len(answer.split()) >= OFF_TOPIC_MIN_WORDS:
        found.append(flagging.off_topic(nearest))
    found += [flagging.possible_collusion(other, similarity) for other, similarity in twins]
    return tuple(found)


def _short_grade(
    student: str,
    question: ShortQuestion,
    matches: tuple[PointMatch, ...],
    words: int,
    carried: tuple[Flag, ...] = (),
    curve: CreditCurve = DEFAULT_CURVE,
) -> QuestionGrade:
    raw = sum(m.marks * m.credit for m in matches)
    mark = round_to_step(raw, question.step, question.marks)
    found = [flagging.contradiction(m.point_id, m.contradiction) for m in matches if m.contradiction is not None]
    found += [_opposite_flag(question, m) for m in matches if m.opposite is not None]
    found += [flagging.pattern_timeout(m.point_id, m.unchecked) for m in matches if m.unchecked is not None]
    found += carried
    near = flagging.borderline(raw, question.step)
    found += [near] if near else []
    unsure = low_confidence(question, matches, mark, curve)
    found += [unsure] if unsure else []
    return QuestionGrade(student, question.id, mark, question.marks, raw, tuple(found), None, matches, words)


def _opposite_flag(question: ShortQuestion, match: PointMatch) -> Flag:
    """Why the segment earns nothing: it opposes the point, denies what the question takes for granted, or
    turns the comparison the question asks for around."""
    point = next(p for p in question.points if p.id == match.point_id)
    why = next((w for w in (explain(match.opposite, t) for t in point.phrasings) if w), "")
    why = why or premise_explain(premise(question.prompt), match.opposite)
    why = why or comparison_explain(compared(question.prompt), question, match.opposite)
    if match.opposite_probability is not None:
        learned = f"the learned check reads it as contradicting the point, p = {match.opposite_probability:.2f}"
        why = f"{why}; {learned}" if why else learned
    return flagging.contradiction(match.point_id, match.opposite, why)


def low_confidence(
    question: ShortQuestion,
    matches: tuple[PointMatch, ...],
    mark: float,
    curve: CreditCurve,
    shift: float = SCORE_SHIFT,
) -> Flag | None:
    """Flag a mark that moving every point's score by `shift` (up, or down) would change.

    Pattern hits and rubric contradictions are fixed credits and do not move. The reason names the
    point whose score sits nearest a credit edge.
    """
    free = [m for m in matches if m.fixed_credit is None]
    if not free:
        return None
    scores = np.array([m.score for m in free])
    weights = np.array([m.marks for m in matches])
    for direction in (1, -1):
        raw = float(weights @ credits(matches, curve, direction * shift))
        other = round_to_step(raw, question.step, question.marks)
        if abs(other - mark) > 1e-9:
            edges = np.array([curve.low, curve.high])
            distance = np.abs(scores[:, None] - edges[None, :])
            k, e = np.unravel_index(int(distance.argmin()), distance.shape)
            edge = "no-credit" if e == 0 else "full-credit"
            detail = f"point {free[k].point_id} scored {scores[k]:.3f}, near the {edge} edge {edges[e]:g}"
            return flagging.low_confidence(mark, other, shift, detail)
    return None


def _mcq_grade(student: str, question: McqQuestion, answer: str) -> QuestionGrade:
    choice = read_choice(answer, question.options)
    found: list[Flag] = []
    if not answer.strip():
        found.append(flagging.blank())
    elif choice.problem is not None:
        found.append(flagging.unreadable_choice(choice.problem))
    elif choice.doubt is not None:
        found.append(flagging.hesitant_choice(choice.doubt))
    mark = question.marks if question.void else score_choice(choice, question.keys, question.marks)
    return QuestionGrade(student, question.id, mark, question.marks, mark, tuple(found), choice.letter)
