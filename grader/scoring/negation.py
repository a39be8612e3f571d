"""Polarity: does a segment say the opposite of a rubric phrasing it resembles?

Sentence embeddings barely see negation: "ReLU is not necessary" sits at cosine 0.9 from "ReLU is
necessary". So every text also gets a polarity, read from its words, and a segment whose polarity
opposes a phrasing earns nothing for it (grade masks those pairs out of the score matrix).

A text's polarity has three parts:

- signed concepts: each content word, stemmed, is asserted (+1) or denied (-1). It is denied when a
  negation cue denies it: the first content word after "not", "no", "never", "without", "neither /
  nor", "fails to", "prevents" ... (auxiliaries, determiners and light verbs like "contained" are
  skipped: "is not contained in a closed path" denies "closed", as "is not in a closed path" does);
  or when it is the negative side of a curated antonym pair ("decrease" is "increase" denied,
  "unnecessary" is "necessary" denied), flipped back by a cue ("not unnecessary"). A concept both
  asserted and denied in one text is dropped (a contrast: "A is connected but B is not");
- the numbers a text states ("26 x 26" against "28 x 28");
- a yes/no verdict at the start ("No, ...", "Yes because ...").

A segment opposes a phrasing when the verdicts are opposite; or when the two are about the same
things (COVERAGE of the concepts of the shorter one are in the other) and an odd number of shared
concepts disagree (ODD: a contrapositive flips two and says the same thing), or both state numbers
and share none. The comparison is sparse matrix products over all (segment, phrasing) pairs at once;
only reading each text is per-text Python, once per distinct text of the run.

Measured in bench/contradictions.py (bench/README.md) on SemEval-2013's contradictory and correct
answers, and on the development set; the rules were refined on those same answers, so the numbers
are in-sample for the rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

# "not only X but also Y" and "no matter" negate nothing; "no longer X" negates X.
_NOT_NEGATING = {
    ("not", "only"),
    ("not", "just"),
    ("not", "merely"),
    ("no", "matter"),
    ("no", "doubt"),
    ("not", "least"),
}
_CUES = {
    "not",
    "no",
    "non",
    "never",
    "without",
    "neither",
    "nor",
    "none",
    "nothing",
    "nobody",
    "lack",
    "lacks",
    "unable",
    "hardly",
    "barely",
    "scarcely",
    "seldom",
    "rarely",
}
_FAIL = {"fail", "fails", "failed", "failing"}
"""'fails to converge' denies 'converge' ('fails' alone is the antonym of 'succeeds')."""
_BLOCKERS = {
    # Verbs that deny the event they name: "prevents vanishing", "avoids overfitting". With "from"
    # ("prevents the gradients from exploding") the word after "from" is the one denied. Not "removes":
    # "removes negative values" does not say the values are not negative.
    "prevent",
    "prevents",
    "prevented",
    "preventing",
    "avoid",
    "avoids",
    "avoided",
    "avoiding",
}
_FROM = _BLOCKERS | {"keep", "keeps", "kept", "keeping", "stop", "stops", "stopped", "stopping", "protect", "protects"}
"""...and verbs that deny only through "from": "keeps the signal from exploding" (but "keeps the variance")."""
_POSTPOSED = {"little", "badly", "poorly"}
"""'adds little', 'converges badly' deny the word before (but 'a little' does not)."""
_COMPARATIVES = {"more": 1, "less": -1, "fewer": -1}
"""'more X' / 'less X' is read as one concept, 'more X', asserted or denied: 'less focused' says nothing
against 'more diffused', but does against 'more focused'."""
_SKIP = {
    # Words between a cue and the word it denies: auxiliaries, determiners, degree adverbs.
    "a",
    "an",
    "the",
    "any",
    "be",
    "been",
    "being",
    "is",
    "are",
    "was",
    "were",
    "am",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "get",
    "gets",
    "got",
    "getting",
    "become",
    "becomes",
    "became",
    "really",
    "very",
    "necessarily",
    "always",
    "quite",
    "so",
    "too",
    "as",
    "that",
    "this",
    "these",
    "those",
    "it",
    "its",
    "they",
    "them",
    "to",
    "even",
    "just",
    "exactly",
    "actually",
    "much",
    "entirely",
    "completely",
    "fully",
    "all",
    "at",
    "there",
    "yet",
    "also",
    "will",
    "would",
    "can",
    "could",
    "should",
    "shall",
    "may",
    "might",
    "must",
    "of",
    "for",
    "most",
    "anymore",
    "properly",
    "well",
    "contained",
    "located",
    "placed",
    "found",
    "still",
    "contain",
    "contains",
    "include",
    "includes",
    "included",
}
_FUNCTION = _SKIP | {
    "and",
    "or",
    "but",
    "if",
    "then",
    "than",
    "because",
    "since",
    "so",
    "while",
    "whereas",
    "which",
    "who",
    "what",
    "when",
    "where",
    "why",
    "how",
    "in",
    "on",
    "by",
    "with",
    "from",
    "into",
    "onto",
    "over",
    "under",
    "about",
    "between",
    "i",
    "we",
    "you",
    "he",
    "she",
    "our",
    "their",
    "my",
    "your",
    "his",
    "her",
    "each",
    "every",
    "some",
    "other",
    "one",
    "only",
    "such",
    "like",
    "per",
    "via",
    "up",
    "down",
    "out",
    "yes",
    "yeah",
    "yep",
    "yup",
    "nope",
    "through",
    "during",
    "across",
    "after",
    "before",
    "within",
    "against",
    "here",
    "whose",
    "whom",
}
FUNCTION_WORDS = frozenset(_FUNCTION)
"""Words that carry no concept of their own (auxiliaries, determiners, pronouns, prepositions, connectives)."""
_ANTONYMS = {
    # concept: (words asserting it, words denying it): general English and machine-learning terms.
    # Left out on purpose, after they misfired on the development set: pairs that often name different
    # things within one correct answer ("positive terminal" / "negative values", "deep" / "shallow"
    # networks, "keeps" / "removes", "vanishing" / "exploding" gradients, "allows" / "prevents").
    "increase": ("increase grow rise raise", "decrease reduce shrink"),
    "higher": ("higher", "lower"),
    "larger": ("larger bigger", "smaller"),
    "longer": ("longer", "shorter"),
    "faster": ("faster", "slower"),
    "stronger": ("stronger", "weaker"),
    "better": ("better", "worse"),
    "maximum": ("maximum maximise maximize", "minimum minimise minimize"),
    "same": ("same", "different"),
    "equal": ("equal", "unequal"),
    "include": ("include", "exclude"),
    "accept": ("accept", "reject"),
    "true": ("true", "false"),
    "correct": ("correct right", "incorrect wrong"),
    "possible": ("possible", "impossible"),
    "likely": ("likely", "unlikely"),
    "necessary": ("necessary needed required", "unnecessary unneeded"),
    "sufficient": ("sufficient enough", "insufficient"),
    "stable": ("stable", "unstable"),
    "linear": ("linear", "nonlinear"),
    "linearity": ("linearity", "nonlinearity"),
    "polynomial": ("polynomial", "nonpolynomial"),
    "convex": ("convex", "nonconvex"),
    "zero": ("zero", "nonzero"),
    "overfitting": ("overfitting overfit", "underfitting underfit"),
    "open": ("open", "closed"),
    "connected": ("connected joined", "disconnected unconnected separated"),
    "start": ("start", "stop"),
    "succeed": ("succeed success", "fail failure"),
    "win": ("win", "lose"),
    "present": ("present", "absent"),
    "many": ("many", "few"),
    "easy": ("easy", "difficult"),
    "simple": ("simple", "complex complicated"),
    "dense": ("dense", "sparse"),
    "continuous": ("continuous", "discontinuous"),
    "supervised": ("supervised", "unsupervised"),
    "bounded": ("bounded", "unbounded"),
    "sensitive": ("sensitive", "insensitive"),
    "effective": ("effective", "ineffective"),
    "useful": ("useful", "useless"),
    "relevant": ("relevant", "irrelevant"),
    "important": ("important", "unimportant"),
    "significant": ("significant", "insignificant"),
    "dependent": ("dependent", "independent"),
    "visible": ("visible", "invisible"),
    "finite": ("finite", "infinite"),
    "direct": ("direct", "indirect"),
    "agree": ("agree", "disagree"),
    "improve": ("improve", "worsen degrade"),
    "enable": ("enable", "disable"),
    "appear": ("appear", "disappear"),
    "amplify": ("amplify", "suppress dampen"),
    "biased": ("biased", "unbiased"),
}
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[.,;:!?()\[\]/]")
# Atomic (?>...): when the lookahead finds a letter later in the token, no shorter run of digits can
# do better, and retrying each one made a long run of digits quadratic (120,000 digits took minutes).
_NUMBER = re.compile(r"(?<![\w.])((?>\d+(?:\.\d+)?))(?![\w.]*[a-z_])", re.IGNORECASE)
_AUX = "is|are|was|were|will|would|can|could|has|have|had|do|does|did|should|may|might|must"
_CONTRACTIONS = [
    (re.compile(r"\bno longer\b"), "not"),
    # "neither B nor C is in ...", "none of the tools could ...": the predicate is denied, not the subjects.
    (re.compile(rf"\bneither\b(.{{1,40}}?)\b(?:nor|or)\b(.{{1,40}}?)\b({_AUX})\b"), r"\1 and \2 \3 not"),
    (re.compile(rf"\bnone of\b(.{{1,40}}?)\b({_AUX})\b"), r"\1 \2 not"),
    (re.compile(r"\b(can)\s*'?\s*not\b|\bcan't\b|\bcant\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\b(\w+)n[’'\"]t\b"), r"\1 not"),
    (
        re.compile(r"\b(doesnt|dont|didnt|isnt|arent|wasnt|werent|wouldnt|shouldnt|couldnt|hasnt|havent)\b"),
        lambda m: m.group(1)[:-2] + " not",
    ),
]
_VERDICT = re.compile(r"^\W*(yes|yeah|yep|yup|no|nope)\b\s*(.?)", re.IGNORECASE)
_VERDICT_NO_FOLLOWERS = {
    "",
    ",",
    ".",
    "!",
    ";",
    ":",
    "-",
    "—",
    "–",
}
_VERDICT_WORDS_AFTER_NO = {
    "because",
    "since",
    "as",
    "it",
    "they",
    "this",
    "that",
    "i",
    "we",
    "not",
    "the",
    "grad",
    "there",
}
_SUBJECTS = {"i", "we", "they", "he", "she"}
"""A subject pronoun after a content word starts another clause ("there is no gap they are connected")."""
_BOUNDARY = {
    # Where a cue's scope ends: punctuation, and the words that start another clause.
    ".",
    ",",
    ";",
    ":",
    "!",
    "?",
    "(",
    ")",
    "[",
    "]",
    "and",
    "but",
    "whereas",
    "while",
    "although",
    "though",
    "however",
    "because",
    "since",
    "so",
    "which",
    "who",
    "when",
    "where",
    "if",
    "unless",
    "therefore",
    "thus",
    "hence",
    "than",
}


@lru_cache(maxsize=200_000)  # a class repeats the same few thousand words: stem each once
def stem(word: str) -> str:
    """A crude, deterministic suffix stripper: enough to meet 'increases', 'increased', 'increasing'."""
    w = word.lower().strip("'-")
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith("es") and w[-3] in "sxhz":
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


_ANTONYM = {
    stem(word): (concept, sign)
    for concept, sides in _ANTONYMS.items()
    for sign, words in zip((1, -1), sides)
    for word in words.split()
}


def normalise(text: str) -> str:
    """Lower case, straight quotes, contractions spelled out ("can't" -> "can not"): what the rules read."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def antonym(word: str) -> str | None:
    """A word from the other side of the curated antonym pair `word` belongs to ('decrease' for
    'increase', 'linear' for 'nonlinear'), or None: the checker's training pairs swap them."""
    found = _ANTONYM.get(stem(word))
    if found is None:
        return None
    concept, sign = found
    return _ANTONYMS[concept][0 if sign < 0 else 1].split()[0]


def verdict(text: str) -> int:
    """+1 for an answer that opens with yes, -1 with no ("No, ...", "no because"), else 0."""
    found = _VERDICT.match(text.strip())
    if not found:
        return 0
    word, after = found.group(1).lower(), found.group(2)
    if word.startswith("y"):
        return 1
    rest = text.strip()[found.end(1) :].lstrip()
    follower = re.match(r"[a-z]+", rest.lower())
    if after in _VERDICT_NO_FOLLOWERS or not rest or (follower and follower.group(0) in _VERDICT_WORDS_AFTER_NO):
        return -1
    return 0  # "no difference": a determiner, read as negation below


def numbers(text: str) -> frozenset[str]:
    """The numbers a text states, normalised ('0.50' and '0.5' are one); digits inside names (L2, 1x1) are not."""
    return frozenset(f"{float(n):g}" for n in _NUMBER.findall(text))


def signed_concepts(text: str) -> dict[str, int]:
    """Stemmed content word -> +1 asserted or -1 denied; words both asserted and denied are dropped.

    A cue denies the next content word of its clause; "or" and "/" carry the denial on ("not X or Y",
    "no vanishing/exploding"); a second cue before the word flips it back ("not unable to converge").
    """
    tokens = _WORD.findall(normalise(text))
    found: dict[str, set[int]] = {}
    denied = False  # a cue waits for the word it denies
    carry = False  # the last word was denied
    compare = 0  # "more" / "less" waits for its word
    last: tuple[str, int] | None = None
    last_at = -1
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ("or", "/") and carry:
            denied = True
            continue
        carry = carry and token in ("or", "/")
        if token in _BOUNDARY or (token in _SUBJECTS and last is not None):
            denied, compare, last = False, 0, None
            continue
        if token in _POSTPOSED and last and last_at == i - 1:
            found[last[0]].discard(last[1])
            found[last[0]].add(-last[1])
            last = None
            continue
        if token == "nor":
            denied = True
            continue
        if (
            token in _CUES
            or (token in _FAIL and following == "to")
            or (token == "from" and any(t in _FROM for t in tokens[max(0, i - 4) : i]))
        ):
            if (token, following) in _NOT_NEGATING or (token == "not" and before == "or"):
                continue
            if token == "no" and i == 0 and verdict(text):
                continue  # the verdict "No, ..." is read by `verdict`
            denied = not denied
            continue
        if token in _BLOCKERS:
            denied = denied != (not _from_ahead(tokens, i))
            continue
        if token in _COMPARATIVES:
            compare = _COMPARATIVES[token]
            if following == "than":  # "less than": the comparison itself
                found.setdefault("more", set()).add(-compare if denied else compare)
                compare = 0
            continue
        if token in _FUNCTION or token in ("or", "/") or not re.match(r"[a-z]", token):
            continue
        if token.startswith("non-") and len(token) > 5:  # non-linear, non-polynomial: the word, denied
            concept, sign = _ANTONYM.get(stem(token[4:]), (stem(token[4:]), 1))
            sign = -sign
        else:
            concept, sign = _ANTONYM.get(stem(token), (stem(token), 1))
        if compare:
            concept, sign, compare = f"more {concept}", sign * compare, 0
        if denied:
            sign = -sign
        found.setdefault(concept, set()).add(sign)
        last, last_at = (concept, sign), i
        carry, denied = denied, False
    return {c: next(iter(s)) for c, s in found.items() if len(s) == 1}


def _from_ahead(tokens: Sequence[str], i: int) -> bool:
    for t in tokens[i + 1 : i + 6]:
        if t == "from":
            return True
        if t in _BOUNDARY and t not in ("and", "or"):
            return False
    return False


ODD = True
"""Concepts oppose two texts only when an odd number of them disagree: "a shorter string gives a higher
pitch" flips both concepts of "a longer string gives a lower pitch" and says the same thing."""
COVERAGE = 0.8
"""Two texts can oppose only when they are about the same things: at least this share of the concepts of
the one with fewer is in the other. "Terminal 1 is connected to the negative terminal" does not oppose
"terminal 1 and the positive terminal are not connected"; "... connected to the positive terminal" does."""


@dataclass(frozen=True)
class Polarity:
    """The polarity of many texts as rows: signed concepts, numbers stated, yes/no verdict.

    Built once for every distinct text of a run (`polarity`), so any rows can be compared with any.
    """

    signs: sparse.csr_matrix
    """(texts, concepts): +1 asserted, -1 denied, 0 not said."""
    numbers: sparse.csr_matrix
    """(texts, numbers): 1 where the text states the number."""
    verdicts: np.ndarray
    """(texts,): +1 yes, -1 no, 0 none."""

    def rows(self, index: Sequence[int] | np.ndarray) -> Polarity:
        index = np.asarray(index, dtype=np.intp)
        return Polarity(self.signs[index], self.numbers[index], self.verdicts[index])

    def __len__(self) -> int:
        return self.signs.shape[0]


def polarity(texts: Sequence[str]) -> Polarity:
    """The polarity of each text (one row each, in order), over one shared vocabulary."""
    return polarity_of(
        [signed_concepts(t) for t in texts],
        [numbers(t) for t in texts],
        np.array([verdict(t) for t in texts], dtype=np.int8),
    )


def polarity_of(
    concepts: Sequence[dict[str, int]],
    stated: Sequence[frozenset[str]] | None = None,
    verdicts: np.ndarray | None = None,
) -> Polarity:
    """Rows from what was read: signed concepts, numbers stated (none when not given), verdicts (none)."""
    concept_ids: dict[str, int] = {}
    number_ids: dict[str, int] = {}
    s_rows, s_cols, s_vals, n_rows, n_cols = [], [], [], [], []
    for r, signed in enumerate(concepts):
        for concept, sign in signed.items():
            s_rows.append(r)
            s_cols.append(concept_ids.setdefault(concept, len(concept_ids)))
            s_vals.append(sign)
    for r, found in enumerate(stated or ()):
        for n in found:
            n_rows.append(r)
            n_cols.append(number_ids.setdefault(n, len(number_ids)))
    rows = len(concepts)
    signs = sparse.csr_matrix((np.array(s_vals, np.float32), (s_rows, s_cols)), shape=(rows, max(1, len(concept_ids))))
    said = sparse.csr_matrix(
        (np.ones(len(n_rows), np.float32), (n_rows, n_cols)), shape=(rows, max(1, len(number_ids)))
    )
    return Polarity(signs, said, np.zeros(rows, dtype=np.int8) if verdicts is None else verdicts)


def opposed(segments: Polarity, phrasings: Polarity) -> np.ndarray:
    """(segments, phrasings) booleans: True where the segment says the opposite of the phrasing.

    For a shared concept |s||p| - s*p is 0 when the signs agree and 2 when they differ, so
    (|S||P|^T - S P^T) / 2 counts the disagreements of every pair; |S||P|^T counts the shared
    concepts (coverage). Sparse matrix products over all pairs at once, no loop.
    """
    s, p = abs(segments.signs), abs(phrasings.signs)
    shared = (s @ p.T).toarray()
    disagreements = (shared - (segments.signs @ phrasings.signs.T).toarray()) / 2
    smaller = np.minimum(np.diff(s.indptr)[:, None], np.diff(p.indptr)[None, :])
    same_topic = shared >= COVERAGE * np.maximum(smaller, 1) - 1e-9
    count = np.rint(disagreements).astype(np.int64)
    concepts_differ = ((count % 2 == 1) if ODD else (count > 0)) & same_topic
    shared_numbers = (segments.numbers @ phrasings.numbers.T).toarray()
    states_s = np.diff(segments.numbers.indptr) > 0
    states_p = np.diff(phrasings.numbers.indptr) > 0
    numbers_differ = states_s[:, None] & states_p[None, :] & (shared_numbers == 0) & same_topic
    verdicts_differ = (segments.verdicts[:, None].astype(np.int16) * phrasings.verdicts[None, :]) < 0
    return concepts_differ | numbers_differ | verdicts_differ


def explain(segment: str, phrasing: str) -> str:
    """In words, why `segment` opposes `phrasing` (for a flag's reason); '' when it does not."""
    v_s, v_p = verdict(segment), verdict(phrasing)
    if v_s * v_p < 0:
        return f"it answers {'yes' if v_s > 0 else 'no'} where the point says {'yes' if v_p > 0 else 'no'}"
    n_s, n_p = numbers(segment), numbers(phrasing)
    if n_s and n_p and not n_s & n_p:
        return f"it states {', '.join(sorted(n_s))} where the point states {', '.join(sorted(n_p))}"
    c_s, c_p = signed_concepts(segment), signed_concepts(phrasing)
    differ = [c for c in c_s if c in c_p and c_s[c] != c_p[c]]
    if differ:
        concept = differ[0]
        segment_says = "denies" if c_s[concept] < 0 else "asserts"
        point_says = "asserts" if c_p[concept] > 0 else "denies"
        return f"it {segment_says} '{concept}', which the point {point_says}"
    return ""
