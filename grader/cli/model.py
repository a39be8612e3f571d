"""`grader model ...`: build the learned contradiction checks' weights (`grader.scoring.concept_check`,
`grader.scoring.checker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

model_app = typer.Typer(
    help="The learned contradiction checks: train them (once; the weights are kept under models/).",
    no_args_is_help=True,
)
console = Console()


SEMEVAL_HELP = (
    "SemEval-2013 Task 7 train as one CSV "
    "(corpus, question_id, reference_answers_json, student_answer, label_3way, ...)."
)
RUBRIC_HELP = "A rubric whose points, negated and paraphrased, are learned too (repeatable)."


@model_app.command("train-concept-check")
def train_concept_check_command(
    semeval: Annotated[Path, typer.Option("--semeval", help=SEMEVAL_HELP)],
    rubric: Annotated[list[Path], typer.Option("--rubric", help=RUBRIC_HELP)] = [],  # noqa: B006
    out: Annotated[Path, typer.Option("--out", help="Folder for concept-check.npz and concept-check.json.")] = Path(
        "models/concept-check"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Shuffles the questions into the threshold's folds.")] = 0,
) -> None:
    """Train the concept check, grading's default learned check (about 80 CPU-seconds; no model needed)."""
    from grader.atomic import check_writable
    from grader.exam.rubric import ShortQuestion, load_rubric
    from grader.scoring import concept_check
    from grader.scoring.checker import rubric_pairs
    from grader.scoring.checker_train import read_semeval

    check_writable(out, folder=True)
    rubrics = [load_rubric(path) for path in rubric]
    pairs = [p for r in rubrics for q in r.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    answers, references = read_semeval(semeval)
    phrasings = {q: [t for point in points for t in point] for q, points in references.items()}
    with console.status("Training the concept check (five folds for the threshold, then all answers)"):
        check, meta = concept_check.train(answers, pairs, references=phrasings, seed=seed)
    meta["rubrics"] = [r.exam for r in rubrics]
    meta["data"] = "SemEval-2013 Task 7 train (Beetle, SciEntsBank), CC BY-SA 3.0; rubric pairs"
    meta["command"] = (
        "grader model train-concept-check --semeval SEMEVAL.csv "
        + "".join(f"--rubric {p} " for p in rubric)
        + f"--seed {seed}"
    )
    concept_check.save(check, out, meta)
    held = meta["out_of_fold"]
    console.print(
        f"Wrote {out}: threshold {check.threshold:.3f}; on questions it did not learn, with the rules, it flags "
        f"{held['recall_with_rules']:.1%} of {held['contradictory']} contradictory and "
        f"{held['false_alarms_with_rules']:.1%} of {held['correct']} correct answers "
        f"(the rules alone: {held['recall_rules_alone']:.1%} and {held['false_alarms_rules_alone']:.1%})."
    )
    read = meta["reading"]
    console.print(
        f"Read whole against every reference of their question, {read['recall']:.1%} of the contradictory and "
        f"{read['false_alarms']:.1%} of the correct answers read as not correct (the calibration's doubt)."
    )
    said = meta["opposition"]["reading"]
    console.print(
        f"Read whole as saying the opposite (threshold {check.opposition.threshold:.3f}, grading's check), with "
        f"the rules: {said['recall']:.1%} of the contradictory and {said['false_alarms']:.1%} of the correct answers."
    )


@model_app.command("train-checker")
def train_checker_command(
    semeval: Annotated[Path, typer.Option("--semeval", help=SEMEVAL_HELP)],
    rubric: Annotated[list[Path], typer.Option("--rubric", help=RUBRIC_HELP)] = [],  # noqa: B006
    out: Annotated[Path, typer.Option("--out", help=("Folder for checker.safetensors and checker.json."))] = Path(
        "models/checker"
    ),
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", min=0.0, help=("For the retrained layers (the head takes 40 times it)."))
    ] = 1.5e-4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[
        int,
        typer.Option("--threads", min=1, help=("CPU threads torch may use (1 gives the same weights on every run).")),
    ] = 1,
) -> None:
    """Train the cross-encoder checker from the packaged all-MiniLM-L6-v2 weights (nothing is downloaded;
    ~13 CPU-minutes). Grading uses it only with GRADER_CHECKER=on."""
    import torch

    from grader.embedding.encoder import default_model_path
    from grader.exam.rubric import ShortQuestion, load_rubric
    from grader.scoring.checker import rubric_pairs, save
    from grader.scoring.checker_train import read_semeval, train_checker

    torch.set_num_threads(threads)
    questions = [q for path in rubric for q in load_rubric(path).questions if isinstance(q, ShortQuestion)]
    pairs = [p for q in questions for p in rubric_pairs(q)]
    columns = (TextColumn("Training the checker"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("train", total=None)
        model, meta = train_checker(
            *read_semeval(semeval),
            pairs,
            default_model_path(),
            epochs=epochs,
            seed=seed,
            learning_rate=learning_rate,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    meta["rubrics"] = [load_rubric(path).exam for path in rubric]
    meta["command"] = (
        "grader model train-checker --semeval SEMEVAL.csv "
        + " ".join(f"--rubric {p}" for p in rubric)
        + f" --epochs {epochs} --learning-rate {learning_rate:g} --seed {seed} --threads {threads}"
    )
    save(model, out, meta)
    held = meta["held_out"]
    console.print(
        f"Wrote {out}: threshold {meta['threshold']:.3f}; on {held['questions']} held-out questions it flags "
        f"{held['recall']:.1%} of {held['contradictory']} contradictory and {held['false_alarms']:.1%} of "
        f"{held['correct']} correct answers ({meta['train_seconds']} s)."
    )
