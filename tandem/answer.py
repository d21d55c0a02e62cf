"""Final-answer extraction: the content of the last \\boxed{...}, nested braces included.

A regex such as ``\\boxed{[^}]*}`` cuts ``\\boxed{\\frac{1}{2}}`` at the first
closing brace; this scanner matches braces instead.
"""

from __future__ import annotations

_MARKERS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``; None if there is none."""
    best_pos, best = -1, None
    for marker in _MARKERS:
        start = 0
        while (i := text.find(marker, start)) != -1:
            start = i + len(marker)
            content = _braced(text, start)
            if content is not None and i > best_pos:
                best_pos, best = i, content
    return best.strip() if best is not None else None


def _braced(text: str, i: int) -> str | None:
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None  # unbalanced: the answer was cut off
