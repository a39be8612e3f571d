"""`grader model ...`: build the contradiction checker's weights (`grader.scoring.checker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

model_app = typer.Typer(
    help="The learned contradiction checker: train it (once; the weights are kept under models/).", no_args_is_help=True
)
console = Console()


@model_app.command("train-checker")
def train_checker_command(
    semeval: Annotated[
        Path,
        typer.Option(
            "--semeval",
            help=(
                "SemEval-2013 Task 7 train as one CSV "
                "(corpus, question_id, reference_answers_json, student_answer, label_3way, ...)."
            ),
        ),
    ],
    rubric: Annotated[
        list[Path],
        typer.Option(
            "--rubric", help=("A rubric whose points, negated and paraphrased, are learned too (repeatable).")
        ),
    ] = [],  # noqa: B006
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
    """Train the checker from the packaged all-MiniLM-L6-v2 weights (nothing is downloaded)."""
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
