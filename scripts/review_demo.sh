#!/usr/bin/env bash
# The review screen on the bundled development set, in a real terminal.
#
# Grades submissions/dl-midsem-sample.csv into a scratch gradebook (about a minute on 2 cores),
# starts `python -m grader.cli review` in a detached 120x45 tmux session on a private socket, types as a
# TA would (accepts eight answers, tries an off-step mark, comments, sets 0.5, quits), prints every
# screen it saw, and saves the first and the ninth answer's screens and the closing summary to SCREEN_FILE.
# Nothing else in the repository changes; the scratch gradebook is deleted at the end.
#
#   bash scripts/review_demo.sh [SCREEN_FILE]      (default docs/review-screen.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "review_demo: tmux is not installed" >&2; exit 1; }
screen_file=${1:-docs/review-screen.txt}
work=$(mktemp -d)
sock="$work/tmux.sock"
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

echo "grading the sample into a scratch gradebook..."
HF_HUB_OFFLINE=1 .venv/bin/python - "$work/exam.db" <<'EOF'
import sys

from grader.embedding.encoder import Encoder
from grader.scoring.grade import grade
from grader.review.gradebook import Gradebook
from grader.exam.rubric import load_rubric
from grader.exam.submissions import read_submissions

rubric = load_rubric("rubrics/dl-midsem.yaml")
answers = read_submissions("submissions/dl-midsem-sample.csv", rubric.question_ids)
with Gradebook.open(sys.argv[1]) as gb:
    gb.record_run(rubric, answers, grade(rubric, answers, Encoder.load(device="cpu")), rubric_path="rubrics/dl-midsem.yaml")
    print(f"{len(gb.queue())} answers queued for review")
EOF

tmux -S "$sock" -u new-session -d -s review -x 120 -y 45 \
    "cd '$PWD' && LANG=C.UTF-8 .venv/bin/python -m grader.cli review '$work/exam.db' --ta alice; sleep 600"

capture() { tmux -S "$sock" capture-pane -p -t review | sed -e 's/[[:space:]]*$//' -e "s#$work/##g"; }
wait_for() {  # wait until the screen shows $1 (a fixed string), then print the screen
    for _ in $(seq 300); do
        if capture | grep -qF -- "$1"; then capture | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; return; fi
        sleep 0.2
    done
    echo "review_demo: the screen never showed '$1'; it shows:" >&2
    capture >&2
    exit 1
}
key() { tmux -S "$sock" send-keys -t review -- "$1" Enter; }
show() { printf '\n=== after %s ===\n' "$1"; }

show "start"
first=$(wait_for "alice>")
echo "$first"
total=$(echo "$first" | grep -oE '^ 1 of [0-9]+' | grep -oE '[0-9]+$')
for n in $(seq 2 9); do
    key a
    screen=$(wait_for " $n of $total ")
done
show "accepting 8 answers"
echo "$screen"
ninth=$screen
key 0.3
show "0.3"
wait_for "to set it anyway"
key "c see the model answer for what is missing"
show "c ..."
wait_for "comment saved"
key "m 0.5"
show "m 0.5"
wait_for " 10 of $total "
key q
show "q"
summary=$(wait_for "to resume")
echo "$summary"

{
    echo "\$ grader review exam.db --ta alice      # the bundled sample; tmux capture-pane -p of a 120x45 terminal"
    echo "$first"
    echo "   ⋮     (typed: a, eight times)"
    echo "$ninth"
    echo "   ⋮     (typed: 0.3 → refused, off the step; c see the model answer for what is missing; m 0.5; q)"
    echo "$summary" | tail -n 4
} > "$screen_file"
echo
echo "saved the first and ninth screens and the summary to $screen_file"
