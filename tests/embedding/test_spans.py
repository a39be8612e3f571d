from itertools import pairwise

import numpy as np
import pytest

from grader.embedding.encoder import Encoder
from grader.embedding.segment import Segment, segment_spans, segments
from grader.embedding.spans import (
    SegmentMode,
    cache_key,
    encode_answers,
    pool,
    pooled_segments,
    token_ranges,
    token_windows,
    window_owners,
)
from grader.errors import GraderError

ANSWER = "ReLU keeps only positive values, so gradients do not vanish. Sigmoid saturates at both ends."
LONG = " and ".join(f"point {i} says that layer {i} learns a feature of the image" for i in range(40)) + "."
"""One sentence of over 500 word pieces: the model reads it in windows."""


def _mode(encoder, mode):
    """The session's loaded model under another segment setting (no second load), counters at 0."""
    twin = encoder.with_segments(mode)
    twin.encoded = twin.from_cache = 0
    return twin


def _windows_cover_every_token_once(length, limit):
    windows = token_windows(length, limit)
    owners = window_owners(windows)
    assert all(stop - start <= limit for start, stop in windows)
    assert owners[0][0] == 0 and owners[-1][1] == length
    assert all(a[1] == b[0] for a, b in pairwise(owners))  # a partition, in order
    assert all(start <= a and b <= stop for (start, stop), (a, b) in zip(windows, owners))
    return windows


def test_a_text_within_the_limit_is_one_window():
    assert token_windows(10, 254) == [(0, 10)]
    assert _windows_cover_every_token_once(254, 254) == [(0, 254)]


def test_a_long_text_is_read_in_overlapping_windows_each_token_from_the_one_it_is_central_in():
    windows = _windows_cover_every_token_once(600, 254)
    assert windows == [(0, 254), (127, 381), (254, 508), (346, 600)]
    owners = window_owners(windows)
    assert owners[1] == (190, 317)  # half of each overlap to each side
    for length in (255, 300, 509, 1000):
        _windows_cover_every_token_once(length, 254)


def test_token_ranges_cover_the_tokens_a_character_span_touches():
    offsets = np.array([(0, 4), (5, 10), (10, 12), (13, 18)])  # "ReLU keeps## on ly"-like pieces
    assert token_ranges(offsets, [(5, 12)]) == [(1, 3)]
    assert token_ranges(offsets, [(0, 4), (13, 18)]) == [(0, 1), (3, 4)]
    assert token_ranges(offsets, [(12, 13)]) == []  # only the space between two pieces
    assert token_ranges(offsets, [(18, 30)]) == []


def test_pool_is_the_unit_mean_of_the_span_tokens_and_reports_empty_spans():
    tokens = np.array([[1, 0], [0, 1], [3, 3], [0, 2]], dtype=np.float32)
    offsets = np.array([(0, 2), (3, 5), (6, 8), (9, 11)])
    vectors, empty = pool(
        tokens, offsets, [Segment("a b", ((0, 5),)), Segment("x", ((20, 22),)), Segment("c", ((6, 8), (9, 11)))]
    )
    assert np.allclose(vectors[0], np.array([1, 1]) / np.sqrt(2))
    assert empty == [1] and not vectors[1].any()
    assert np.allclose(vectors[2], np.array([3, 5]) / np.sqrt(34))


def _token_mean(model, text):
    tokens = model.encode([text], output_value="token_embeddings")[0].cpu().numpy()
    return tokens[1:-1].sum(axis=0)  # without [CLS] and [SEP]


def _unit(vector):
    return vector / np.linalg.norm(vector)


def test_a_sentence_pooled_is_the_model_mean_of_its_word_pieces_and_an_answer_the_mean_of_its_sentences(encoder):
    """The same numbers as the model's own token embeddings, read through another path: a segment
    across sentences is pooled over each sentence's own pass."""
    model = encoder._model
    one = "Sigmoid saturates at both ends."
    [[sentence]] = encode_answers(model, [one], [[Segment(one, ((0, len(one)),))]], batch_size=8)
    assert float(sentence @ _unit(_token_mean(model, one))) > 0.99999
    [[whole]] = encode_answers(model, [ANSWER], [[Segment(ANSWER, ((0, len(ANSWER)),))]], batch_size=8)
    first, second = ANSWER[: ANSWER.index(" Sigmoid")], one
    expected = _unit(_token_mean(model, first) + _token_mean(model, second))
    assert float(whole @ expected) > 0.99999
    assert float(whole @ _unit(_token_mean(model, ANSWER))) < 0.999  # not one pass over the whole answer


def test_each_distinct_sentence_is_read_once_per_window_and_every_segment_gets_a_unit_vector(encoder, monkeypatch):
    model = encoder._model
    rows = []
    forward = type(model[0]).forward

    def counting(self, features, **kwargs):
        rows.append(int(features["input_ids"].shape[0]))
        assert features["input_ids"].shape[1] <= model.max_seq_length
        return forward(self, features, **kwargs)

    monkeypatch.setattr(type(model[0]), "forward", counting)
    answers = [ANSWER, LONG, "Yes.", "Sigmoid saturates at both ends. Yes."]
    spans = [segment_spans(a) for a in answers]
    vectors = encode_answers(model, answers, spans, batch_size=4)
    length = len(model.tokenizer(LONG, add_special_tokens=False)["input_ids"])
    windows = len(token_windows(length, model.max_seq_length - 2))
    assert windows > 1
    assert sum(rows) == 2 + windows + 1  # ANSWER's two sentences, LONG's windows, "Yes."; the last answer's are read
    for found, v in zip(spans, vectors):
        assert v.shape == (len(found), encoder.dimension) and v.dtype == np.float32
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_a_segment_inside_a_sentence_sees_its_sentence_not_the_rest_of_the_answer(encoder):
    model = encoder._model
    answers = [
        "ReLU keeps positive values, so gradients flow. Tanh is centred.",
        "It is fast. ReLU keeps positive values, so gradients flow.",
    ]
    spans = [segment_spans(a) for a in answers]
    vectors = encode_answers(model, answers, spans, batch_size=8)
    for text in ("ReLU keeps positive values", "so gradients flow.", "ReLU keeps positive values, so gradients flow."):
        one, two = ([s.text for s in found].index(text) for found in spans)
        assert np.allclose(vectors[0][one], vectors[1][two], atol=1e-5)
    whole = [s.text for s in spans[0]].index(answers[0])
    sentence = [s.text for s in spans[0]].index("ReLU keeps positive values, so gradients flow.")
    assert float(vectors[0][whole] @ vectors[0][sentence]) < 0.99  # a whole answer reads all of its sentences


def test_pooled_segments_mean_what_they_say(encoder):
    """A segment pooled in context stays close to the same words encoded alone, and apart from others."""
    model = encoder._model
    [found] = [segment_spans(ANSWER)]
    [vectors] = encode_answers(model, [ANSWER], [found], batch_size=8)
    alone = encoder.encode([s.text for s in found])
    agree = np.sum(vectors * alone, axis=1)
    assert agree.min() > 0.6, list(zip([s.text for s in found], agree))
    relu = [s.text for s in found].index("Sigmoid saturates at both ends.")
    assert int(np.argmax(vectors @ alone[relu])) == relu


def test_same_answers_give_the_same_bytes(encoder):
    model = encoder._model
    answers = [ANSWER, LONG, ANSWER.upper()]
    spans = [segment_spans(a) for a in answers]
    first = encode_answers(model, answers, spans, batch_size=2)
    second = encode_answers(model, answers, spans, batch_size=2)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second))


def test_each_distinct_answer_is_encoded_once_and_its_segments_line_up(encoder):
    pooling = _mode(encoder, SegmentMode.POOLED)
    answers = [ANSWER, "Yes, it does.", ANSWER]
    found = pooled_segments(pooling, answers)
    assert pooling.encoded == 2
    rows = found.index(answers, offset=5)
    assert len(rows) == 2 * len(segments(ANSWER)) + len(segments("Yes, it does."))
    assert [found.texts[r - 5] for r in rows] == segments(ANSWER) + segments("Yes, it does.") + segments(ANSWER)
    assert rows[: len(segments(ANSWER))] == rows[-len(segments(ANSWER)) :]


def test_separate_mode_and_stand_ins_without_token_embeddings_pool_nothing(encoder):
    assert pooled_segments(_mode(encoder, SegmentMode.SEPARATE), [ANSWER]) is None

    class StandIn:
        name = "stand-in"

        def encode(self, texts, progress=None):
            return np.eye(len(texts), 4, dtype=np.float32)

    assert pooled_segments(StandIn(), [ANSWER]) is None


def test_the_mode_is_checked_at_load():
    with pytest.raises(GraderError, match="pooled or separate"):
        Encoder.load(device="cpu", segments="fused")


def test_cache_keys_depend_on_the_answer_not_only_the_segment_text():
    one, two = "It collapses. So it fails.", "It collapses. The UAT holds."
    first = next(s for s in segment_spans(one) if s.text == "It collapses.")
    second = next(s for s in segment_spans(two) if s.text == "It collapses.")
    assert first.parts == second.parts and cache_key(one, first) != cache_key(two, second)
    assert cache_key(one, first) != first.text


def test_cache_hits_and_misses(encoder, tmp_path):
    cached = _mode(encoder, SegmentMode.POOLED).with_cache(tmp_path / "cache.sqlite")
    answers = [ANSWER, "It collapses. So it fails."]
    spans = [segment_spans(a) for a in answers]
    first = cached.encode_segments(answers, spans)
    assert (cached.encoded, cached.from_cache) == (2, 0)
    assert cached.cache.misses == sum(len(s) for s in spans) and cached.cache.hits == 0

    again = cached.encode_segments(answers, spans)  # every span stored: the model does not run
    assert (cached.encoded, cached.from_cache) == (2, 2)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again))

    other = "It collapses. The UAT holds."  # shares a segment text with a stored answer: still a miss
    cached.encode_segments([other], [segment_spans(other)])
    assert (cached.encoded, cached.from_cache) == (3, 2)

    plain = cached.encode(["It collapses."])  # a text encoded alone never reads a pooled vector
    assert cached.encoded == 4
    assert not np.allclose(plain[0], first[1][[s.text for s in spans[1]].index("It collapses.")])
