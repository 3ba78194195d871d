"""Stage 2 analysis: exported cell source → ``SecretHit``s, credentials that must not be baked into an image.

Two passes over each exported cell (plain Python, line numbers preserved):

1. Token formats (``formats``) — AWS, GitHub, GitLab, Slack, SendGrid, Google, Stripe, OpenAI, Anthropic and
   Hugging Face keys, PEM private keys (also split over several literals), base64-encoded keys and service-account
   files, JWTs, Azure account keys, passwords and tokens inside URLs, API keys in query strings, passwords in
   ODBC and libpq connection strings — matched over the whole text.
2. Context (``names``, with ``ast``): string literals bound to a secret-like name.

Settings that reach the image or the cluster outside the code — ``%env NAME=value`` lines and ``env:`` in
nbship.yaml — are scanned as the assignment ``NAME = "value"`` (``scan_setting``); so are requirements
(``%pip install`` lines, ``requirements:``), which are written into requirements.lock and the image
(``scan_requirement``).

A ``SecretHit`` never holds more than four characters of a value, so no message or log built from it can leak one.
Every step is linear in the size of the cell: a cell is input from anyone, and ``nbship check`` runs in CI.
"""

from __future__ import annotations

from nbship.secrets.formats import LineIndex, format_matches
from nbship.secrets.names import (
    CONTEXT_GATE,
    bound_literals,
    comment_hits,
    env_name,
    judge_literal,
    literal_values,
    parse,
)
from nbship.secrets.values import SecretHit, preview

__all__ = ["REQUIREMENT_HINT", "SecretHit", "scan_requirement", "scan_setting", "scan_source"]

# where a credential a requirement needs belongs instead: pip's settings reach the resolver and the builder stage only
REQUIREMENT_HINT = (
    "A requirement is written into requirements.lock and the image: remove the credentials, and give them to pip "
    "instead — publish the package to your private index and name that index in pip's configuration "
    "(`pip config set global.extra-index-url https://<user>:<token>@<host>/simple`, or PIP_EXTRA_INDEX_URL); nbship "
    "resolves with it and passes it to the image's builder stage only (README: Private indexes)."
)


def scan_source(source: str) -> list[SecretHit]:
    """Findings sorted by line; a source that does not parse as Python is scanned as text (patterns only).

    Raises:
        Nothing: any string is scanned; one that does not parse only loses the name-based checks.
    """
    import bisect

    lowered = source.lower()
    index = LineIndex(source)
    matches = format_matches(source, lowered, index)
    offsets = [m.offset for m in matches]  # sorted
    found: list[tuple[int, int, SecretHit]] = []  # (line, column, hit), sorted at the end
    named: dict[int, str] = {}  # match offset → the name of the variable holding it, as an env var
    # lines worth a look by name: a secret-like name bound to a literal, or a format match to name the env var after
    wanted = {index.line_of(g.start()) for g in CONTEXT_GATE.finditer(lowered)}
    wanted.update(index.line_of(m.start) for m in matches)
    tree = parse(source) if wanted else None
    if tree is not None:
        columns = _Columns(source.split("\n"))  # not splitlines(): ast counts only \n as a line break
        seen: set[int] = set()  # a literal is judged once, under the first (most precise) binding found
        for bound in bound_literals(tree, sorted(wanted)):
            node = bound.node
            if id(node) in seen:
                continue
            seen.add(id(node))
            col = columns.of(node.lineno, node.col_offset)
            end_line = node.end_lineno or node.lineno
            start = index.span(node.lineno)[0] + col
            end = index.span(end_line)[0] + columns.of(end_line, node.end_col_offset or 0)
            inside = matches[bisect.bisect_left(offsets, start):bisect.bisect_left(offsets, end)]
            for value in literal_values(node):
                held = [m for m in inside if m.value in value]
                if held:  # reported by the format pass, under its precise kind
                    for m in held:
                        named.setdefault(m.offset, env_name(bound.name))
                    continue
                hit = judge_literal(bound, value, node.lineno)
                if hit is not None:
                    found.append((node.lineno, col, hit))
        found.extend(comment_hits(source))
    for m in matches:
        line = index.line_of(m.start)
        env = m.env
        if m.named and "_" in named.get(m.offset, ""):  # DB_URL, yes; a bare "URL" says less than m.env
            env = named[m.offset]
        found.append((line, index.column_of(m.start), SecretHit(line, m.kind, preview(m.value), env)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [hit for _line, _col, hit in found]


def scan_setting(name: str, value: str) -> list[SecretHit]:
    """A setting (``%env NAME=value``, ``env:`` in nbship.yaml) scanned as the code ``NAME = "value"``.

    Raises:
        Nothing, as ``scan_source``.
    """
    return scan_source(f"{name} = {value!r}\n")


def scan_requirement(spec: str) -> list[SecretHit]:
    """A requirement (``pkg @ https://user:pass@host/pkg.whl``, ``git+https://<token>@github.com/org/pkg``)
    scanned as the code ``REQUIREMENT = "spec"``; a ``${VARIABLE}`` placeholder is not a credential.

    Raises:
        Nothing, as ``scan_source``.
    """
    return scan_setting("REQUIREMENT", spec)


class _Columns:
    """``ast`` columns count UTF-8 bytes, text offsets count characters: the map of each non-ASCII line is built
    once, so that a long line with many literals costs no more than a short one."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._byte_starts: dict[int, list[int] | None] = {}  # line → byte offset of each character, None: ASCII

    def of(self, lineno: int, byte_col: int) -> int:
        import bisect
        from itertools import accumulate

        if lineno not in self._byte_starts:
            line = self._lines[lineno - 1]
            self._byte_starts[lineno] = None if line.isascii() else [
                0, *accumulate(len(c.encode(errors="surrogatepass")) for c in line)]
        starts = self._byte_starts[lineno]
        return byte_col if starts is None else bisect.bisect_right(starts, byte_col) - 1
