"""Markdown and LaTeX to plain text: a rubric holds what a student would type, not the paper's markup."""

from __future__ import annotations

import re

_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$", re.S)
_LINK = re.compile(r"\[((?:[^\[\]\\]|\\.)*)\]\(([^()\s]*)\)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|$<>])")
_BOXES = "☐□▢◻"

_TEX_FONTS = re.compile(
    r"\\(?:text|mathrm|mathcal|mathbf|mathit|mathsf|mathbb|boldsymbol|operatorname|textbf|textit|bm)\s*\{([^{}]*)\}"
)
_TEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEX_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
_TEX_WORDS = {
    "times": " x ",
    "cdot": " * ",
    "ast": "*",
    "in": " in ",
    "sim": " ~ ",
    "pm": " ± ",
    "mp": " ∓ ",
    "leq": " <= ",
    "le": " <= ",
    "geq": " >= ",
    "ge": " >= ",
    "neq": " != ",
    "ne": " != ",
    "approx": " ≈ ",
    "infty": "inf",
    "partial": "∂",
    "nabla": "∇",
    "quad": " ; ",
    "qquad": " ; ",
    "to": " -> ",
    "rightarrow": " -> ",
    "Rightarrow": " => ",
    "mapsto": " -> ",
    "ldots": "...",
    "cdots": "...",
    "dots": "...",
    "lvert": "|",
    "rvert": "|",
    "|": "||",
    "{": "{",
    "}": "}",
    ",": " ",
    ";": " ",
    ":": " ",
    "!": "",
    " ": " ",
}


def _plain_math(tex: str) -> str:
    """LaTeX math as a student would type it: `\\frac{a}{b}` -> a/b, `n_{in}` -> n_in, `\\lambda` -> lambda."""
    sized = r"\\(?:left|right|big|Big|bigg|Bigg)\s*(\\?[()\[\]|.{}])"  # \left( ... \right.
    text = re.sub(sized, lambda m: m[1].lstrip("\\").replace(".", ""), tex)
    previous = None
    while previous != text:
        previous = text
        text = _TEX_FONTS.sub(r"\1", text)
        text = _SCRIPT.sub(lambda m: m[1] + (m[2] if re.fullmatch(r"\w+", m[2]) else f"({m[2]})"), text)
        text = _TEX_SQRT.sub(r"sqrt(\1)", text)
        text = _TEX_FRAC.sub(lambda m: f"{_wrap(m[1])}/{_wrap(m[2])}", text)
    text = re.sub(r"\\([A-Za-z]+|.)", lambda m: _TEX_WORDS.get(m[1], m[1]), text)
    text = text.replace("{", "").replace("}", "")
    return _flat(re.sub(r"\s*;\s*(;\s*)*", "; ", text)).strip(" ;")


def _wrap(term: str) -> str:
    term = term.strip()
    return term if re.fullmatch(r"[\w.^∂]+", term) else f"({term})"


def _clean(text: str) -> str:
    """Markdown inline text as plain text: math converted, links unwrapped, bold and escapes removed."""
    out, last = [], 0
    for m in _MATH.finditer(text):
        out.append(_clean_markdown(text[last : m.start()]))
        out.append(_plain_math(m[1] if m[1] is not None else m[2]))
        last = m.end()
    out.append(_clean_markdown(text[last:]))
    return "".join(out)


def _clean_markdown(text: str) -> str:
    text = _LINK.sub(lambda m: m[1], text)
    text = re.sub(r"\\\(|\\\)", lambda m: m[0][1], text)
    text = _MD_ESCAPE.sub(r"\1", text)
    text = text.replace("**", "").replace("__", "")
    text = re.sub(f"[{_BOXES}]", "", text)
    text = _SCRIPT.sub(lambda m: m[1] + (m[2] if re.fullmatch(r"\w+", m[2]) else f"({m[2]})"), text)
    return text


def _flat(text: str) -> str:
    return " ".join(text.split())


def _tidy(text: str) -> str:
    """Cleaned, one line, no space before punctuation ("The β -VAE" stays as written)."""
    return re.sub(r"\s+([,.;:?!])(?=\s|$)", r"\1", _flat(_clean(text)))
