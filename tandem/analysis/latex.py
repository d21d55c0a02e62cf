"""``report.tex``: the report's tables as LaTeX, to paste into a paper.

The tables are read back from the Markdown ``report`` writes, so the two files cannot disagree;
tabulate writes each as a booktabs ``tabular`` (``\\usepackage{booktabs}``) and escapes its cells.
Each table goes in a ``table`` float whose caption is the paragraph the report puts above it (the
first table, Table 1's layout, takes the report's title). Only the reading of Markdown tables is
written here.
"""

from __future__ import annotations

import re

from tabulate import tabulate

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """Plain text for a caption (the cells are tabulate's to escape)."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _SPECIAL[m.group()], text)


def markdown_tables(md: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each pipe table in ``md`` as (the paragraph above it, header cells, body rows)."""
    tables, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        if _is_row(lines[i]) and i + 1 < len(lines) and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            j = i + 2
            while j < len(lines) and _is_row(lines[j]):
                j += 1
            above = [line for line in lines[:i] if line.strip() and not _is_row(line)]
            tables.append((above[-1].strip() if above else "", _cells(lines[i]), [_cells(x) for x in lines[i + 2:j]]))
            i = j
        else:
            i += 1
    return tables


def _is_row(line: str) -> bool:
    s = line.strip()
    return s.startswith("|") and s.endswith("|") and len(s) > 1


def _cells(line: str) -> list[str]:
    return [c.strip().replace("**", "") for c in line.strip()[1:-1].split("|")]


def to_latex(md: str, title: str) -> str:
    """Every table of the report ``md`` as a LaTeX ``table`` float."""
    out = [f"% tandem report: {title}", "% needs \\usepackage{booktabs}; a table wider than the column (long run names) fits",
           "% it with \\resizebox{\\linewidth}{!}{...} around its tabular (\\usepackage{graphicx})", ""]
    for n, (above, header, rows) in enumerate(markdown_tables(md)):
        caption = title if n == 0 else above
        body = tabulate(rows, headers=header, tablefmt="latex_booktabs", disable_numparse=True)
        out += ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{escape(caption)}}}", body, "\\end{table}", ""]
    return "\n".join(out)
