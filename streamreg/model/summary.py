"""``model.summary()``: statsmodels' results table as text, HTML and LaTeX.

:class:`Summary` *is* the text (a ``str``: printing it, comparing it and searching it work as
before) and also renders itself in a notebook (``_repr_html_``) and as LaTeX. Its three tables
are statsmodels' — the fit statistics, the coefficients, and, when the residual pass ran
(``model.diagnostics``), the bottom block: Omnibus, Prob(Omnibus), Skew, Kurtosis,
Durbin-Watson, Jarque-Bera (JB), Prob(JB), Cond. No. — followed by the notes.

>>> import numpy as np, streamreg
>>> x = np.arange(20.0).reshape(-1, 1)
>>> summary = streamreg.fit(x, 3 * x[:, 0] + np.sin(x[:, 0])).summary()
>>> "Durbin-Watson:" in summary, summary.as_html().startswith("<table")
(True, True)
"""

from __future__ import annotations

import html

from .. import report


class Summary(str):
    """The text of ``summary()``, with ``as_text``, ``as_html``, ``as_latex`` and a notebook
    rendering."""

    _model = None

    @classmethod
    def of(cls, model) -> Summary:
        out = cls(report.summary_text(model))
        out._model = model
        return out

    def __repr__(self) -> str:  # the REPL shows the table, not a quoted string
        return str(self)

    def as_text(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.as_html()

    def as_html(self) -> str:
        """Three HTML tables (as statsmodels' ``Summary.as_html``) and the notes."""
        tables = report.summary_tables(self._model)
        parts = [_html_pairs(tables["title"], tables["top"])]
        parts.append(_html_grid(tables["header"], tables["rows"]))
        if tables["bottom"]:
            parts.append(_html_pairs(None, tables["bottom"]))
        if tables["notes"]:
            items = "".join(
                f"[{i}] {html.escape(n)}<br/>" for i, n in enumerate(tables["notes"], 1)
            )
            parts.append(f"<br/><br/>Notes:<br/>{items}")
        return "\n".join(parts)

    def as_latex(self) -> str:
        """The tables as LaTeX ``tabular`` environments inside one ``table``."""
        tables = report.summary_tables(self._model)
        lines = ["\\begin{table}", "\\caption{" + _tex(tables["title"]) + "}", "\\begin{center}"]
        lines += _tex_pairs(tables["top"])
        header = " & ".join(_tex(h) for h in tables["header"])
        lines += ["\\begin{tabular}{l" + "r" * (len(tables["header"]) - 1) + "}", "\\hline"]
        lines += [header + " \\\\", "\\hline"]
        lines += [" & ".join(_tex(c) for c in row) + " \\\\" for row in tables["rows"]]
        lines += ["\\hline", "\\end{tabular}"]
        if tables["bottom"]:
            lines += _tex_pairs(tables["bottom"])
        lines += ["\\end{center}"]
        if tables["notes"]:
            lines += ["Notes: \\newline"]
            lines += [f" [{i}] {_tex(n)} \\newline" for i, n in enumerate(tables["notes"], 1)]
        lines.append("\\end{table}")
        return "\n".join(lines)


def _html_pairs(title, rows) -> str:
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    body = "".join(
        "<tr>"
        + "".join(f"<th>{html.escape(k)}</th><td>{html.escape(v)}</td>" for k, v in row)
        + "</tr>"
        for row in rows
    )
    return f'<table class="simpletable">{caption}{body}</table>'


def _html_grid(header, rows) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr><th>"
        + html.escape(row[0])
        + "</th>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    return f'<table class="simpletable">{head}{body}</table>'


def _tex_pairs(rows) -> list[str]:
    out = ["\\begin{tabular}{lclc}", "\\hline"]
    out += [" & ".join(_tex(x) for pair in row for x in pair) + " \\\\" for row in rows]
    out += ["\\hline", "\\end{tabular}"]
    return out


_TEX = {c: "\\" + c for c in "&%$#_{}"}
_TEX.update({"~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "\\": "\\textbackslash{}"})


def _tex(text) -> str:
    return "".join(_TEX.get(c, c) for c in str(text))
