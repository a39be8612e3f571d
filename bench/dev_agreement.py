"""How the default marks agree with our own marks on the bundled development set (README table).

.venv/bin/python bench/dev_agreement.py
"""

from __future__ import annotations

from devset import load_devset, per_question

from grader.calibration.agreement import agreement
from grader.exam.rubric import McqQuestion


def main() -> None:
    dev = load_devset()
    mcq = [g for g in dev.grades.items if isinstance(dev.rubric.question(g.question_id), McqQuestion)]
    exact = sum(g.mark == dev.human[(g.student_id, g.question_id)] for g in mcq)
    print(f"{len(dev.grades.students)} students. MCQ marks equal to ours: {exact}/{len(mcq)}\n")
    print("| question | answers | MAE | QWK | exact | within one step |")
    print("|---|---|---|---|---|---|")
    shorts = []
    for qid, a in per_question(dev, dev.grades):
        shorts += [(g.mark, dev.human[(g.student_id, qid)]) for g in dev.grades.items if g.question_id == qid]
        print(f"| {qid} | {a.n} | {a.mae:.3f} | {a.qwk:.3f} | {a.exact:.0%} | {a.within_step:.0%} |")
    pooled = agreement([m for m, _ in shorts], [h for _, h in shorts], step=0.25)
    print(
        f"| all short answers | {pooled.n} | {pooled.mae:.3f} | {pooled.qwk:.3f} "
        f"| {pooled.exact:.0%} | {pooled.within_step:.0%} |"
    )
    totals = [(dev.grades.total(s), sum(v for (st, _), v in dev.human.items() if st == s)) for s in dev.grades.students]
    t = agreement([m for m, _ in totals], [h for _, h in totals], step=0.25)
    print(f"\nPer-student totals (out of {dev.rubric.max_total:g}): MAE {t.mae:.2f}, Pearson r {t.pearson:.3f}")
    print("(QWK on mark steps: 0.5 for most questions, 0.25 for A1d and for the pooled row.)")


if __name__ == "__main__":
    main()
