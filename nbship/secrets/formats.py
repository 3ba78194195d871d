"""Secrets scan, first pass: token formats matched over a cell's whole text → ``FormatMatch``es.

A Python identifier cannot take these shapes, so in code that parses every match lies in a string literal or a
comment; matching the text instead of ``tokenize`` tokens sees f-strings the same way on 3.11 (one STRING token)
and 3.12+ (FSTRING_* pieces), and still works on a cell that does not parse.

Each pattern is linear in the length of the text, because a cell comes from anyone (issue 13: a PEM header followed
by YAML-like lines once backtracked for ever). Python's ``re`` backtracks, so the patterns are written so that it
never has two ways to match the same characters: every pattern starts with a literal or a lookbehind that only a
token's first character passes; repetitions of overlapping pieces are bounded (``{1,256}``); and where a run of
pieces must be tried as a unit (the PEM block's header lines) the piece is made atomic with the
``(?=(?P<x>…))(?P=x)`` idiom (possessive quantifiers need Python 3.11; nbship supports 3.10).
``benchmarks/bench_secret_scan.py`` pumps every pattern with adversarial input and prints the growth.
"""

from __future__ import annotations

import base64
import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from nbship.secrets.values import any_value, is_placeholder, looks_random, mixed_case, random_part


@dataclass(frozen=True)
class _Format:
    kind: str
    anchors: tuple[str, ...]  # lower-case substrings one of which every match contains: skips the regex cheaply
    regex: re.Pattern[str]  # the value is the last group that took part; a URL's scheme is group "scheme"
    env: str  # "": named after the URL's scheme (or the variable the literal is assigned to)
    valid: Callable[[str], bool] = random_part(6)  # noqa: RUF009 -- a shared, stateless predicate
    named: bool = False  # the env var may take the name of the variable holding the literal (DB_URL = "…")
    near: re.Pattern[str] | None = None  # must also match on the same line (a libpq DSN's other keywords)


class FormatMatch(NamedTuple):
    offset: int  # of the value
    end: int  # of the value
    start: int  # of the whole match, which gives the line: a PEM block's header, a URL's scheme
    kind: str
    value: str
    env: str
    named: bool


def _b64_fragments(marker: bytes) -> tuple[str, ...]:
    """The base64 text that ``marker`` encodes to wherever it sits in the encoded bytes (three alignments)."""
    fragments = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + marker).decode()
        # only the characters whose six bits all come from the marker
        fragments.append(encoded[-(-shift * 4 // 3):(shift + len(marker)) * 4 // 3])
    return tuple(fragments)


_B = r"(?:(?<![A-Za-z0-9_\-+/])|(?<=://))"  # a token starts at a boundary (or a URL's user part), not inside a run
_E = r"(?![A-Za-z0-9_\-])"
_SCHEME = r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]{1,30})://"
_SQL_SCHEMES = ("postgres", "mysql", "mariadb", "mssql", "oracle", "sqlite", "cockroach", "redshift", "snowflake")
# Between a PEM header and its body: whitespace, escaped newlines, and the glue of a string split over several
# literals — quotes, string prefixes, `+`, commas and brackets of "\n".join([...]) — one character at a time.
_PEM_GLUE = r"""[\s'",+()\[\]]|\\[rn]|[rbuRBU]{1,2}(?=['"])"""
# An encrypted key's "Proc-Type: 4,ENCRYPTED" lines, taken whole (atomic): the one-way-only parse keeps it linear.
_PEM_HEADER_LINE = r"(?=(?P<header>[A-Za-z][A-Za-z\-]{0,40}:[^\n\\'\"]{0,200}))(?P=header)"
_SERVICE_ACCOUNT = _b64_fragments(b"service_account")
_B64_PRIVATE_KEY = _b64_fragments(b'"private_key"') + _b64_fragments(b"PRIVATE KEY-----")
_B64_RUN = r"(?<![A-Za-z0-9+/=])([A-Za-z0-9+/]{40,}={0,2})(?![A-Za-z0-9+/=])"
_LIBPQ_KEYWORD = re.compile(
    r"(?<![\w.])(?:host|hostaddr|dbname|user|port|sslmode|service|connect_timeout|application_name)=[^\s'\",()]")


def _strong_random(value: str) -> bool:
    return looks_random(value, strong=True)


# Order is priority: a later format overlapping an earlier match is the same secret seen twice.
FORMATS: tuple[_Format, ...] = (
    # the value is the start of the body: a bare header ("if pem.startswith('-----BEGIN…')") holds no key
    _Format("private key", ("private key",), re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ ){0,6}PRIVATE KEY(?: BLOCK)?-----"
        rf"(?:{_PEM_GLUE}|{_PEM_HEADER_LINE})*"
        r"([A-Za-z0-9+/=]{16,})(?=\\[rn]|[\n\r'\"]|$)"), "PRIVATE_KEY", any_value),
    _Format("base64-encoded service-account key", tuple(f.lower() for f in _SERVICE_ACCOUNT), re.compile(_B64_RUN),
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            lambda v: any(f in v for f in _SERVICE_ACCOUNT) and any(f in v for f in _B64_PRIVATE_KEY)),
    _Format("base64-encoded private key", tuple(f.lower() for f in _B64_PRIVATE_KEY), re.compile(_B64_RUN),
            "PRIVATE_KEY", lambda v: any(f in v for f in _B64_PRIVATE_KEY)),
    _Format("AWS access key ID", ("akia", "asia"),
            re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])"), "AWS_ACCESS_KEY_ID"),
    _Format("AWS secret access key", ("secret",), re.compile(
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)['\"]?\s{0,20}[:=]\s{0,20}[rb]?['\"]?"
        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"), "AWS_SECRET_ACCESS_KEY", random_part(12)),
    _Format("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), re.compile(
        _B + r"((?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,}))" + _E), "GITHUB_TOKEN"),
    _Format("GitLab token", ("glpat-",), re.compile(_B + r"(glpat-[A-Za-z0-9_\-]{20,})" + _E), "GITLAB_TOKEN"),
    _Format("Slack token", ("xox",), re.compile(_B + r"(xox[abeoprs]-[A-Za-z0-9\-]{10,})" + _E), "SLACK_TOKEN"),
    _Format("Slack webhook URL", ("hooks.slack.com",), re.compile(
        r"https://hooks\.slack\.com/services/T[A-Z0-9]{1,40}/B[A-Z0-9]{1,40}/([A-Za-z0-9]{20,})"), "SLACK_WEBHOOK_URL"),
    _Format("SendGrid API key", ("sg.",), re.compile(
        _B + r"(SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,50})" + _E), "SENDGRID_API_KEY", mixed_case),
    _Format("Google API key", ("aiza",), re.compile(_B + r"(AIza[0-9A-Za-z_\-]{35})" + _E), "GOOGLE_API_KEY"),
    _Format("Stripe live key", ("_live_",),
            re.compile(_B + r"((?:sk|rk)_live_[0-9A-Za-z]{20,})" + _E), "STRIPE_API_KEY"),
    _Format("Anthropic API key", ("sk-ant-",),
            re.compile(_B + r"(sk-ant-[a-z]{1,20}\d{0,4}-[A-Za-z0-9_\-]{20,})" + _E), "ANTHROPIC_API_KEY"),
    _Format("OpenAI API key", ("sk-",), re.compile(
        _B + r"(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,}))" + _E), "OPENAI_API_KEY",
        mixed_case),
    _Format("Hugging Face token", ("hf_",), re.compile(_B + r"(hf_[A-Za-z0-9]{30,})" + _E), "HF_TOKEN",
            lambda v: mixed_case(v + "0")),
    _Format("JSON Web Token", ("eyj",), re.compile(
        _B + r"(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})" + _E), "API_TOKEN", named=True),
    _Format("Azure storage account key", ("accountkey=",), re.compile(
        r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{20,}={0,2})"), "AZURE_STORAGE_CONNECTION_STRING"),
    # scheme://user:password@host — SQLAlchemy, Redis, AMQP, git over https with a token…
    _Format("password in a URL", ("://",), re.compile(
        _SCHEME + r"[^\s:/@'\"?#]{0,256}:([^\s/@'\"]{1,256})@[^\s/@'\"?#]"), "", any_value, named=True),
    # https://token@host — a token as the user part, which git over https and many APIs accept (ssh:// and
    # message:// user parts are names and message ids)
    _Format("token in a URL", ("://",), re.compile(
        r"\b(?P<scheme>https?)://([A-Za-z0-9_\-.~]{16,256})@(?=[A-Za-z0-9\[])"), "", _strong_random, named=True),
    _Format("password in a URL", ("pass", "pwd"), re.compile(
        r"[?&](?i:password|passwd|pwd)=([^&\s'\"#]{1,256})"), "DATABASE_URL", any_value, named=True),
    _Format("API key in a URL", ("key=", "token=", "secret="), re.compile(
        r"[?&](?i:api[_\-]?key|app[_\-]?key|key|(?:api|access|auth)[_\-]?token|token|(?:client[_\-]?)?secret)"
        r"=([^&\s'\"#]{1,256})"), "API_KEY", _strong_random, named=True),
    # ODBC / ADO.NET: "DRIVER=…;SERVER=…;UID=sa;PWD=…;" (the value's trailing spaces are dropped afterwards)
    _Format("password in a connection string", ("password", "pwd"), re.compile(
        r"(?:;\s{0,20}(?i:password|pwd)\s{0,20}=\s{0,20}([^;'\"\n]{1,256})(?=;|['\"]|$)"
        r"|\b(?i:password|pwd)=([^;'\"\s]{1,256});)", re.MULTILINE), "DATABASE_URL", any_value, named=True),
    # libpq: "host=db user=admin password=… dbname=prod", told from a keyword argument by its other keywords
    _Format("password in a connection string", ("password=",), re.compile(
        r"(?<![\w.\-])password=(?:'([^'\\\n]{1,256})'|([^\s'\"\\,(){}]{1,256}))(?=[\s'\"]|\\[nrt]|$)", re.MULTILINE),
        "DATABASE_URL", any_value, named=True, near=_LIBPQ_KEYWORD),
)

# one scan of the lower-cased text rules out most cells at once
_ANCHORS = re.compile("|".join(re.escape(a) for fmt in FORMATS for a in fmt.anchors))


def format_matches(text: str, lowered: str, lines: LineIndex | None = None) -> list[FormatMatch]:
    """Every token-format match, by offset; a match overlapping an earlier format's is dropped (the same secret
    seen twice). ``lowered`` is ``text.lower()`` and ``lines`` its line index, when the caller has them."""
    found: list[FormatMatch] = []
    if not _ANCHORS.search(lowered):
        return found
    lines = lines or LineIndex(text)
    near: dict[tuple[str, int], bool] = {}  # (format, line) → its other keywords are there: once per line
    taken: list[tuple[int, int]] = []  # sorted, disjoint spans of the values kept so far
    for fmt in FORMATS:
        if not any(anchor in lowered for anchor in fmt.anchors):
            continue
        for m in fmt.regex.finditer(text):
            group = next((g for g in range(m.re.groups, 0, -1) if m.group(g) is not None
                          and g != m.re.groupindex.get("header") and g != m.re.groupindex.get("scheme")), 0)
            start, end = m.span(group)
            value = text[start:end].rstrip()
            end = start + len(value)
            if not value or is_placeholder(value) or not fmt.valid(value) or _overlaps(taken, start, end):
                continue
            if fmt.near is not None:
                line = lines.line_of(start)
                if (fmt.kind, line) not in near:
                    near[(fmt.kind, line)] = fmt.near.search(text, *lines.span(line)) is not None
                if not near[(fmt.kind, line)]:
                    continue
            bisect.insort(taken, (start, end))
            env = fmt.env or _url_env(m.group("scheme"))
            found.append(FormatMatch(start, end, m.start(), fmt.kind, value, env, fmt.named))
    found.sort()
    return found


def _overlaps(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_left(taken, (start, end))
    return (i > 0 and taken[i - 1][1] > start) or (i < len(taken) and taken[i][0] < end)


class LineIndex:
    """1-based line and column of an offset in O(log n): a cell may be one long line with thousands of matches."""

    def __init__(self, text: str) -> None:
        self._length = len(text)
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)

    def column_of(self, offset: int) -> int:
        return offset - self._starts[self.line_of(offset) - 1]

    def span(self, line: int) -> tuple[int, int]:
        """Start and end (before its newline) of a 1-based line."""
        end = self._starts[line] - 1 if line < len(self._starts) else self._length
        return self._starts[line - 1], end


def _url_env(scheme: str) -> str:
    base = scheme.lower().split("+")[0]
    if base.startswith(_SQL_SCHEMES):
        return "DATABASE_URL"
    if base.startswith("mongodb"):
        return "MONGODB_URI"
    if base.startswith("redis"):
        return "REDIS_URL"
    if base.startswith("amqp"):
        return "BROKER_URL"
    return "SERVICE_URL"
