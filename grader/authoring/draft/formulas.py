"""Formulas as regex patterns that match their core in the spellings students use."""

from __future__ import annotations

import re

_FORMULA_WORDS = frozenset(
    "sqrt exp log ln sum prod tanh sigmoid relu softmax max min argmax argmin var mean std sin cos tan lambda alpha "
    "beta gamma delta epsilon theta sigma mu pi omega eta rho tau phi where with and in for".split()
)


def _looks_like_formula(text: str) -> bool:
    """A line that is mostly mathematics: an operator or a call, and at most two ordinary words."""
    if not re.search(r"[=~^/±√∑]|\w\(", text):
        return False
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w.casefold() not in _FORMULA_WORDS]
    return len(words) <= 2


def _split_top(text: str, separators: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _formula_core(formula: str) -> str:
    """The distinctive part of a formula: the right-hand side, and inside a distribution U(a, b) its longest bound."""
    core = next((p for p in reversed(_split_top(formula, "=~≈")) if p.strip()), formula).strip()
    while True:
        m = re.fullmatch(r"([A-Za-z]{1,8})\s*\((.*)\)", core)
        if not m or not _balanced(m[2]):
            return core
        args = [a.strip().lstrip("+-−–± ").strip() for a in _split_top(m[2], ",")]
        if len(args) < 2 or not (len(m[1]) == 1 or m[1].casefold() in {"uniform", "normal", "gaussian"}):
            return core
        core = max(args, key=len)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return False
    return depth == 0


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z\u0370-\u03ff]+(?:_\(?[A-Za-z0-9]+\)?)?)"
    r"|(?P<op>\*\*|\+/-|<=|>=|[-+*/^=~,±×·−–√<>|÷])|(?P<open>[(\[{])|(?P<close>[)\]}]))"
)
_FUNCTIONS = {
    "sqrt": r"(sqrt|√|root)",
    "root": r"(sqrt|√|root)",
    "exp": r"(exp|e\^)",
    "log": r"(log|ln)",
    "ln": r"(ln|log)",
    "sum": r"(sum|Σ|∑)",
}
_GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "eta": "η",
    "theta": "θ",
    "lambda": "λ",
    "mu": "μ",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φ",
    "pi": "π",
    "omega": "ω",
    "rho": "ρ",
}
_OPERATORS = {
    "+": r"\+",
    "-": r"[-−–]",
    "−": r"[-−–]",
    "–": r"[-−–]",
    "*": r"[*×·x]?",
    "×": r"[*×·x]?",
    "·": r"[*×·x]?",
    "/": r"(/|÷)",
    "÷": r"(/|÷)",
    "^": r"(\^|\*\*)\s*[({]?",
    "**": r"(\^|\*\*)\s*[({]?",
    "=": "=",
    "~": "~",
    ",": ",",
    "±": r"(±|\+/?-)",
    "+/-": r"(±|\+/?-)",
    "√": r"(sqrt|√|root)",
    "<": "<",
    ">": ">",
    "<=": "(<=|≤)",
    ">=": "(>=|≥)",
    "|": r"\|",
}


def formula_pattern(formula: str) -> str | None:
    """A case-insensitive regex for the core of `formula` as students write it, or None if it would be too loose.

    Brackets are optional (`sqrt 6/(n_in+n_out)`), `n_in` also reads nin, n_{in}, n in and fan_in,
    functions and Greek letters their usual spellings (sqrt/√/root, exp/e^, λ/lambda), spaces free.
    """
    core = _formula_core(formula)
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(core):
        m = _TOKEN.match(core, position)
        if not m or m.end() == position:
            if core[position:].strip():
                position += 1  # a symbol we do not know: skip it (the pattern only gets looser)
                continue
            break
        kind = m.lastgroup
        tokens.append((kind, m[kind]))
        position = m.end()
    parts: list[str] = []
    previous = None
    for kind, value in tokens:
        if kind == "num":
            piece = re.escape(value)
        elif kind == "id":
            piece = _identifier(value)
        elif kind == "op":
            piece = _OPERATORS.get(value, re.escape(value))
        elif kind == "open":
            piece = r"[(\[{]?"
        else:
            piece = r"[)\]}]?"
        follows = kind in ("num", "id") or (kind == "op" and value == "|") or (kind == "open" and previous != "id")
        if parts and previous in ("num", "id", "close") and follows:
            parts.append(r"[*×·]?")  # implicit multiplication: "2 n", "2*n"
        parts.append(piece)
        previous = kind
    optional = {r"[(\[{]?", r"[)\]}]?", r"[*×·]?", r"[*×·x]?"}
    while parts and parts[-1] in optional:
        parts.pop()
    while parts and parts[0] in optional:
        parts.pop(0)
    solid = [p for p in parts if p not in optional]
    if len(solid) < 3:
        return None
    pattern = r"\s*".join(parts)
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None
    return pattern if compiled.search(core) else None


def _identifier(value: str) -> str:
    m = re.fullmatch(r"([A-Za-z\u0370-\u03ff]+)_\(?([A-Za-z0-9]+)\)?", value)
    if m:
        base, sub = _word(m[1]), re.escape(m[2])
        spelled = rf"{base}\s*_?\s*\{{?\s*{sub}\s*\}}?"
        if m[2].casefold() in ("in", "out"):
            return rf"({spelled}|fan[_ -]?{sub})"
        return spelled
    return _word(value)


def _word(word: str) -> str:
    lowered = word.casefold()
    if lowered in _FUNCTIONS:
        return _FUNCTIONS[lowered]
    if lowered in _GREEK:
        return f"({lowered}|{_GREEK[lowered]})"
    for name, symbol in _GREEK.items():
        if word == symbol:
            return f"({name}|{symbol})"
    return re.escape(word)
