from grader.embedding.segment import (
    WINDOW_WORDS,
    clauses,
    overlong,
    segment_spans,
    segments,
    sentence_overlap,
    sentences,
    windows,
)


def test_blank_answer_has_no_segments():
    assert segments("   \n ") == []


def test_sentences_keep_abbreviations_and_decimals():
    text = "Use e.g. sigmoid with step 0.5 here. Then it works! Does it?"
    assert sentences(text) == ["Use e.g. sigmoid with step 0.5 here.", "Then it works!", "Does it?"]


def test_bullets_and_lines_are_sentences():
    assert sentences("No.\n- second order grads are noisy\n2) so it fails") == [
        "No.",
        "second order grads are noisy",
        "so it fails",
    ]


def test_a_point_made_in_half_a_sentence_gets_its_own_segment():
    answer = "Negative values are ignored, because ReLU keeps only the positive evidence for the class."
    assert "because ReLU keeps only the positive evidence for the class." in segments(answer)


def test_formulas_in_brackets_are_not_cut():
    answer = "W ~ U(-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out))), which keeps the variance, so it trains."
    assert clauses(answer)[0] == "W ~ U(-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out)))"


def test_segments_are_unique_and_ordered():
    answer = "It collapses. It collapses. The UAT fails, so polynomials are not dense."
    found = segments(answer)
    assert len(found) == len(set(found))
    assert found[0] == answer  # short answers are also compared whole
    assert found == segments(answer)


def test_a_run_on_sentence_becomes_overlapping_windows_none_too_long():
    words = [f"w{i}" for i in range(400)]
    answer = " ".join(words)
    found = segments(answer)
    assert max(len(s.split()) for s in found) <= WINDOW_WORDS
    assert overlong(answer) == 400 and overlong("Short. Sentences.") == 0
    covered = {w for s in found for w in s.split()}
    assert covered == set(words)  # nothing is cut off: the end is read too
    assert windows(" ".join(words[:101]))[-1].split()[-1] == "w100"


def test_long_sentence_pairs_are_not_formed():
    first, second = " ".join(["a"] * 70) + ".", " ".join(["b"] * 70) + "."
    assert all(len(s.split()) <= WINDOW_WORDS for s in segments(f"{first} {second}"))


def test_segment_spans_point_at_the_same_words_in_the_answer():
    answer = "  No.\n- second order grads are noisy, so it fails\n2) hence Adam, e.g. with  warm-up " + " ".join(
        f"w{i}" for i in range(150)
    )
    found = segment_spans(answer)
    assert [s.text for s in found] == segments(answer)
    for segment in found:
        assert " ".join(answer[a:b] for a, b in segment.parts).split() == segment.text.split(), segment.text
    pair = next(s for s in found if s.text == "No. second order grads are noisy, so it fails")
    assert answer[pair.parts[0][1] : pair.parts[1][0]] == "\n- "  # the bullet between is not part of it


def test_each_segment_knows_the_sentences_it_shares_words_with():
    answer = "  Boosting lowers bias, bagging lowers variance.\n- Bagging samples with replacement; it is parallel."
    found, said = segments(answer), sentences(answer)
    overlap = sentence_overlap(answer)
    assert overlap.shape == (len(found), len(said)) and overlap.any(axis=1).all()
    for row, text in zip(overlap, found):
        assert {said[k] for k in row.nonzero()[0]} == {s for s in said if s in text or text in s}, text
    assert overlap[found.index("bagging lowers variance.")].tolist() == [True, False, False]
