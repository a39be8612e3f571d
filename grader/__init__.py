"""grader: offline short-answer exam grading with sentence embeddings.

The library is the product; `grader.cli` is a thin command line over it. The folders follow the data
(docs/architecture.md): exam -> embedding -> scoring -> review -> calibration -> llm -> outputs ->
authoring -> web -> cli, each importing only from the ones before it (tests/test_layout.py).

Module paths from before the folders (`grader.rubric`, `grader.grade`, ...) still import: each is an
alias of its module's new home (`_MOVED`), so scripts and notebooks written against them keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_MOVED = {
    "rubric": "exam.rubric",
    "patterns": "exam.patterns",
    "submissions": "exam.submissions",
    "segment": "embedding.segment",
    "spans": "embedding.spans",
    "cache": "embedding.cache",
    "embed": "embedding.encoder",
    "match": "scoring.match",
    "negation": "scoring.negation",
    "gaming": "scoring.gaming",
    "collusion": "scoring.collusion",
    "mcq": "scoring.mcq",
    "flags": "scoring.flags",
    "grade": "scoring.grade",
    "engine": "scoring.engine",
    "checker": "scoring.checker",
    "checker_train": "scoring.checker_train",
    "triage": "scoring.triage",
    "agreement": "calibration.agreement",
    "calibrate": "calibration.calibrate",
    "exemplars": "calibration.exemplars",
    "learning": "calibration.learning",
    "sampling": "calibration.sampling",
    "finetune": "calibration.finetune",
    "methods": "calibration.methods",
    "gradebook": "review.gradebook",
    "flagsheet": "review.flagsheet",
    "grouping": "review.grouping",
    "results": "outputs.results",
    "report": "outputs.report",
    "export": "outputs.export",
    "feedback": "outputs.feedback",
    "evaluation": "outputs.evaluation",
    "draft": "authoring.draft",
    "reference": "authoring.reference",
    "suggest": "authoring.suggest",
    "cli_model": "cli.model",
}
"""Old module (under grader.) -> its home since the folders. `grader.review`, `grader.cli` and
`grader.exam` are folders now: their old modules are `grader.review.screen`, `grader.cli.app` and
`grader.exam.files`."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `grader.<old>` as the module at its new home (the same module object, not a copy)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 (importlib's signature)
        old = fullname.removeprefix("grader.")
        if fullname.startswith("grader.") and old in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):  # noqa: ANN001
        return importlib.import_module(f"grader.{_MOVED[spec.name.removeprefix('grader.')]}")

    def exec_module(self, module) -> None:  # noqa: ANN001
        """Nothing to run: the module was imported at its new home."""


sys.meta_path.append(_MovedModules())
