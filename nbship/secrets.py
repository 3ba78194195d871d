"""Stage 2 analysis: exported cell source → ``SecretHit``s, credentials that must not be baked into an image.

Two passes over each exported cell (plain Python, line numbers preserved):

1. Token formats — AWS, GitHub, GitLab, Slack, Google, Stripe, OpenAI, Anthropic and Hugging Face keys, PEM
   private keys, JWTs, Azure account keys, passwords inside URLs and connection strings — matched over the whole
   text. A Python identifier cannot take these shapes, so in code that parses every match lies in a string literal
   or a comment; matching the text instead of ``tokenize`` tokens sees f-strings the same way on 3.11 (one STRING
   token) and 3.12+ (FSTRING_* pieces), and still works on a cell that does not parse.
2. Context (``ast``): string literals bound to a secret-like name — assignments, keyword arguments, dict entries,
   ``os.environ[...] =``, ``setdefault``/``getenv``/``get`` defaults, function defaults — judged by the name's
   last word: password-like names flag any real-looking value, key/secret/token names only random-looking ones.
   Comments (found with ``tokenize``) are parsed the same way: commented-out code is copied into the image too.

A ``SecretHit`` never holds more than four characters of a value, so no message or log built from it can leak one.
"""

from __future__ import annotations

import ast
import bisect
import io
import math
import re
import tokenize
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["SecretHit", "scan_source"]


@dataclass(frozen=True)
class SecretHit:
    """A credential found in a cell: where, what, a harmless preview and the environment variable to use instead."""

    line: int
    kind: str
    preview: str
    suggested_env: str


def _random_part(min_distinct: int) -> Callable[[str], bool]:
    # a format match whose variable part has few distinct characters is a placeholder ("ghp_xxxx…", "AKIA0000…")
    return lambda value: len(set(value)) >= min_distinct


def _mixed_case(value: str) -> bool:
    # real keys are random: upper, lower and digits all occur; "sk-learnPipelineFactory…" is a name, not a key
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)


@dataclass(frozen=True)
class _Format:
    kind: str
    anchors: tuple[str, ...]  # lower-case substrings one of which every match contains: skips the regex cheaply
    regex: re.Pattern[str]  # the value is the last group that took part, or the whole match
    env: str  # "": named after the variable the literal is assigned to, else after the URL's scheme
    valid: Callable[[str], bool] = _random_part(6)  # noqa: RUF009 -- a shared, stateless predicate


class _Match(NamedTuple):
    offset: int  # of the value
    start: int  # of the whole match, which gives the line: a PEM block's header, a URL's scheme
    kind: str
    value: str
    env: str
    named: bool  # the env var may take the name of the variable holding the literal (DB_URL = "postgres://…")


def _any(value: str) -> bool:
    return True


_B = r"(?<![A-Za-z0-9_\-+/])"  # the token starts at a boundary, not inside a longer base64/identifier run
_E = r"(?![A-Za-z0-9_\-])"
_SQL_SCHEMES = ("postgres", "mysql", "mariadb", "mssql", "oracle", "sqlite", "cockroach", "redshift", "snowflake")

# Order is priority: a later format overlapping an earlier match is the same secret seen twice.
_FORMATS: tuple[_Format, ...] = (
    # the value is the start of the body: a bare header ("if pem.startswith('-----BEGIN…')") holds no key
    _Format("private key", ("private key",), re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\\[rn]|\s)+"
        r"(?:[A-Za-z\-]+:[^\n]*(?:\\[rn]|\s)+)*([A-Za-z0-9+/=]{16,})"), "PRIVATE_KEY", _any),
    _Format("AWS access key ID", ("akia", "asia"),
            re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])"), "AWS_ACCESS_KEY_ID"),
    _Format("AWS secret access key", ("secret",), re.compile(
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)['\"]?\s*[:=]\s*[rb]?['\"]?"
        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"), "AWS_SECRET_ACCESS_KEY", _random_part(12)),
    _Format("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), re.compile(
        _B + r"((?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,}))" + _E), "GITHUB_TOKEN"),
    _Format("GitLab token", ("glpat-",), re.compile(_B + r"(glpat-[A-Za-z0-9_\-]{20,})" + _E), "GITLAB_TOKEN"),
    _Format("Slack token", ("xox",), re.compile(_B + r"(xox[abeoprs]-[A-Za-z0-9\-]{10,})" + _E), "SLACK_TOKEN"),
    _Format("Slack webhook URL", ("hooks.slack.com",), re.compile(
        r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/([A-Za-z0-9]{20,})"), "SLACK_WEBHOOK_URL"),
    _Format("Google API key", ("aiza",), re.compile(_B + r"(AIza[0-9A-Za-z_\-]{35})" + _E), "GOOGLE_API_KEY"),
    _Format("Stripe live key", ("_live_",),
            re.compile(_B + r"((?:sk|rk)_live_[0-9A-Za-z]{20,})" + _E), "STRIPE_API_KEY"),
    _Format("Anthropic API key", ("sk-ant-",),
            re.compile(_B + r"(sk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{20,})" + _E), "ANTHROPIC_API_KEY"),
    _Format("OpenAI API key", ("sk-",), re.compile(
        _B + r"(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,}))" + _E), "OPENAI_API_KEY",
        _mixed_case),
    _Format("Hugging Face token", ("hf_",), re.compile(_B + r"(hf_[A-Za-z0-9]{30,})" + _E), "HF_TOKEN",
            lambda v: _mixed_case(v + "0")),
    _Format("JSON Web Token", ("eyj",), re.compile(
        _B + r"(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})" + _E), ""),
    _Format("Azure storage account key", ("accountkey=",), re.compile(
        r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{20,}={0,2})"), "AZURE_STORAGE_CONNECTION_STRING"),
    # scheme://user:password@host — SQLAlchemy, Redis, AMQP, git over https with a token…
    _Format("password in a URL", ("://",), re.compile(
        r"\b([A-Za-z][A-Za-z0-9+.\-]{1,30})://[^\s:/@'\"?#]*:([^\s/@'\"]+)@[^\s/@'\"?#]"), "", _any),
    _Format("password in a URL", ("pass", "pwd"), re.compile(
        r"[?&](?i:password|passwd|pwd)=([^&\s'\"#]+)"), "DATABASE_URL", _any),
    # ODBC / ADO.NET: "DRIVER=…;SERVER=…;UID=sa;PWD=…;"
    _Format("password in a connection string", ("password", "pwd"), re.compile(
        r"(?:;\s*(?i:password|pwd)\s*=\s*([^;'\"\n]+?)\s*(?=;|['\"]|$)|\b(?i:password|pwd)=([^;'\"\s]+);)",
        re.MULTILINE), "DATABASE_URL", _any),
)

# one scan of the lower-cased text rules out most cells at once
_ANCHORS = re.compile("|".join(re.escape(a) for fmt in _FORMATS for a in fmt.anchors))

# Gate for the ``ast`` pass, on the lower-cased source: an identifier or key ending in a secret-like word, then
# `=`, `:` or `,` and soon a quote (``api_key = "``, ``api_key: str = "``, ``"password": "``, ``("X_TOKEN", "``,
# ``auth=("``, ``password, user = "``). ``tokenizer`` and ``max_tokens`` do not pass: most ML code skips ``ast``.
_CONTEXT_GATE = re.compile(
    r"(?:key|secrets?|token|credentials?|creds|auth|authorization|passw(?:or)?d|pwd|pw|pass|passphrase|passcode)"
    r"_?\d*['\"]?\]?\s*[=:,][^'\"]{0,40}['\"]")

_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
        [x*.\-_\#?•\s]*                                  # "", "xxxx", "****", "..."
      | <[^<>]*> | \{\{?[^{}]*\}\}? | \$\{[^}]*\} | \$[A-Z_][A-Z0-9_]* | %\(\w+\)s | %s | \[[A-Z_ \-]+\]
      | change[-_]?me | password | passwd | pass | secret | token | api[-_]?key | key | none | null | todo | tbd
      | guest | anonymous | test | default
      | (?-i:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)              # an environment variable's name, not its value
    )$""")
_PLACEHOLDER_WORDS = re.compile(
    r"(?i)your[-_ ]?|example|placeholder|replace[-_ ]?(?:me|with)|insert[-_ ]|redacted|dummy|fake|xxxx|\*\*\*")
_PATH = re.compile(r"^(?:/|\./|\.\./|~/|[A-Za-z]:\\)|^[\w.\-]+(?:/[\w.\-]+)+\.[A-Za-z][A-Za-z0-9]{0,5}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REGEX_SYNTAX = re.compile(r"\[[^\]]+\][*+?{]|\\[dwsbDWSB]|\(\?|\{\d+(?:,\d*)?\}")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_AUTH_SCHEME = re.compile(r"^(?i:bearer|token|basic)\s+")
_LETTER_RUN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_WORD_SPLIT = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_CONSONANT_CLUSTER = re.compile(r"[^aeiouy]{4}")

_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pw", "pass", "passphrase", "passcode"})
_SECRET_WORDS = frozenset({
    "key", "secret", "secrets", "token", "credential", "credentials", "creds", "auth", "authorization",
    "apikey", "secretkey", "accesskey", "privatekey", "apitoken", "accesstoken", "authtoken",
})
# "key" alone is weak (sort_key, cache_key): a UUID or a hex digest there is an identifier, not a credential
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "auth", "client", "master", "signing", "encryption", "subscription",
    "license", "account", "storage", "service", "app", "ssh", "hmac", "jwt", "session", "webhook", "admin",
})
# words before the last that make the name something else: public_key, sort_key, eos_token, password_hash…
_NOT_SECRET_QUALIFIERS = frozenset({
    "public", "pub", "sort", "primary", "foreign", "partition", "cache", "cluster", "group", "join", "lookup",
    "index", "column", "col", "row", "dict", "map", "s3", "object", "blob", "file", "path", "feature", "label",
    "target", "metric", "prng", "rng", "seed", "eos", "bos", "pad", "unk", "sep", "cls", "mask", "special",
    "start", "end", "stop", "max", "min", "num", "n",
})


def scan_source(source: str) -> list[SecretHit]:
    """Findings sorted by line; a source that does not parse as Python is scanned as text (patterns only).

    Raises:
        Nothing: any string is scanned; one that does not parse only loses the name-based checks.
    """
    lowered = source.lower()
    matches = _format_matches(source, lowered)
    found: list[tuple[int, int, SecretHit]] = []  # (line, column, hit), sorted at the end
    named: dict[int, str] = {}  # match offset → the name of the variable holding it, as an env var
    # lines worth a look by name: a secret-like name bound to a literal, or a format match to name the env var after
    wanted = {lowered.count("\n", 0, g.start()) + 1 for g in _CONTEXT_GATE.finditer(lowered)}
    wanted.update(source.count("\n", 0, m.start) + 1 for m in matches)
    tree = _parse(source) if wanted else None
    if tree is not None:
        lines = source.split("\n")  # not splitlines(): ast counts only \n as a line break, not \f or \u2028
        line_starts = [0]
        for text in lines:
            line_starts.append(line_starts[-1] + len(text) + 1)
        for name, node, password in _bound_literals(tree, sorted(wanted)):
            col = _char_col(lines, node.lineno, node.col_offset)
            start = line_starts[node.lineno - 1] + col
            end = line_starts[(node.end_lineno or node.lineno) - 1] + _char_col(
                lines, node.end_lineno or node.lineno, node.end_col_offset or 0)
            for value in _literal_values(node):
                inside = [m for m in matches if start <= m.offset < end and m.value in value]
                if inside:  # reported by the format pass, under its precise kind
                    for m in inside:
                        named.setdefault(m.offset, _env_name(name))
                    continue
                hit = _judge_literal(name, value, node.lineno, password=password,
                                     piece=isinstance(node, ast.JoinedStr))
                if hit is not None:
                    found.append((node.lineno, col, hit))
        found.extend(_comment_hits(source))
    for m in matches:
        line = source.count("\n", 0, m.start) + 1
        env = m.env
        if m.named and "_" in named.get(m.offset, ""):  # DB_URL, yes; a bare "URL" says less than m.env
            env = named[m.offset]
        hit = SecretHit(line, m.kind, _preview(m.value), env)
        found.append((line, m.start - source.rfind("\n", 0, m.start) - 1, hit))
    found.sort(key=lambda item: (item[0], item[1]))
    return [hit for _line, _col, hit in found]


def _char_col(lines: list[str], lineno: int, byte_col: int) -> int:
    # ast columns count UTF-8 bytes, text offsets count characters
    return len(lines[lineno - 1].encode()[:byte_col].decode(errors="ignore"))


def _format_matches(text: str, lowered: str) -> list[_Match]:
    """Every token-format match; a match overlapping an earlier format's is dropped (the same secret seen twice)."""
    found: list[_Match] = []
    taken: list[tuple[int, int]] = []
    if not _ANCHORS.search(lowered):
        return found
    for fmt in _FORMATS:
        if not any(anchor in lowered for anchor in fmt.anchors):
            continue
        for m in fmt.regex.finditer(text):
            group = next((g for g in range(m.re.groups, 0, -1) if m.group(g) is not None), 0)
            value = m.group(group)
            start, end = m.span(group)
            if _is_placeholder(value) or not fmt.valid(value) or any(s < end and start < e for s, e in taken):
                continue
            taken.append((start, end))
            env = fmt.env or (_url_env(m.group(1)) if fmt.kind == "password in a URL" else "API_TOKEN")
            found.append(_Match(start, m.start(), fmt.kind, value, env, fmt.env in ("", "DATABASE_URL")))
    return found


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


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _statements_on(tree: ast.AST, lines: list[int]) -> Iterator[ast.AST]:
    """``ast.walk``, skipping statements that span none of ``lines`` (sorted): most of a cell, most of the time."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.stmt):
            i = bisect.bisect_left(lines, node.lineno)
            if i == len(lines) or lines[i] > (node.end_lineno or node.lineno):
                continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _bound_literals(tree: ast.AST, lines: list[int]) -> Iterator[tuple[str, ast.expr, bool]]:
    """(name, literal node, the value is a password whatever the name) for strings bound to names on ``lines``."""
    for node in _statements_on(tree, lines):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _pairs(target, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            yield from _pairs(node.target, node.value)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield from _pairs(node.arg, node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    yield from _pairs(key.value, value)
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            # os.environ.setdefault("X_TOKEN", "…"), os.getenv("DB_PASSWORD", "…"), os.putenv(…), cfg.get(…)
            if called in {"setdefault", "getenv", "putenv", "get"} and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                yield from _pairs(first.value, node.args[1])
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            for arg, default in zip(positional[len(positional) - len(node.defaults):], node.defaults, strict=True):
                yield from _pairs(arg.arg, default)
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if kw_default is not None:
                    yield from _pairs(arg.arg, kw_default)


def _pairs(target: ast.expr | str, value: ast.expr) -> Iterator[tuple[str, ast.expr, bool]]:
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        # `a, b = c, d, e` fails at run time, but the scan must not
        for t, v in zip(target.elts, value.elts, strict=False):
            yield from _pairs(t, v)
        return
    if isinstance(target, str):
        name = target
    elif isinstance(target, ast.Name):
        name = target.id
    elif isinstance(target, ast.Attribute):
        name = target.attr
    elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) \
            and isinstance(target.slice.value, str):
        name = target.slice.value  # os.environ["X_TOKEN"] = "…", config["password"] = "…"
    else:
        return
    if isinstance(value, (ast.Constant, ast.JoinedStr)):
        yield name, value, False
    elif isinstance(value, ast.Tuple) and len(value.elts) == 2 and _words(name)[-1:] == ["auth"]:
        # requests' auth=("user", "password")
        yield name, value.elts[1], True


def _literal_values(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return [node.value]
        if isinstance(node.value, bytes):
            return [node.value.decode("latin-1")]
        return []
    if isinstance(node, ast.JoinedStr):  # only the literal pieces: interpolated values come from elsewhere
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return []


def _judge_literal(name: str, value: str, line: int, *, password: bool, piece: bool) -> SecretHit | None:
    """``password``: the value is a password whatever the name; ``piece``: a literal part of an f-string."""
    words = _words(name)
    while words and words[-1].isdigit():  # api_key_2, token1
        words.pop()
    if not words or any(w in _NOT_SECRET_QUALIFIERS for w in words[:-1]):
        return None
    last = words[-1]
    env = _env_name(name)
    if (last in _PASSWORD_WORDS or password) and not piece:
        # passwords are chosen by people: low entropy is no evidence against them
        if len(value) >= 6 and not _is_placeholder(value) and not _PATH.search(value) and not _is_prompt(value):
            return SecretHit(line, f"password assigned to '{name}'", _preview(value), env)
        return None
    if last not in _SECRET_WORDS:
        return None
    if "secret" in words and ({"aws", "access"} & set(words)) and re.fullmatch(r"[A-Za-z0-9/+]{40}", value):
        return SecretHit(line, "AWS secret access key", _preview(value), "AWS_SECRET_ACCESS_KEY")
    strong = last != "key" or any(w in _KEY_QUALIFIERS for w in words[:-1])
    if _looks_random(_AUTH_SCHEME.sub("", value), strong):
        return SecretHit(line, f"high-entropy string assigned to '{name}'", _preview(value), env)
    return None


def _looks_random(value: str, strong: bool) -> bool:
    """A key/secret/token-like value: long, no spaces, not a word, a path, a URL, a placeholder — and high entropy."""
    if len(value) < 16 or any(c.isspace() for c in value) or "://" in value:
        return False
    if _is_placeholder(value) or _PATH.search(value) or _REGEX_SYNTAX.search(value):
        return False
    if not strong and (_UUID.match(value) or _HEX.match(value)):
        return False
    # mostly pronounceable words: "model_v3_embeddings_cache", "bert-base-uncased" (a random 32-character
    # base62 string passes for words 0.2% of the time, lowercase-and-digits 5%: measured on 4,000 samples)
    words = sum(len(run) for run in _LETTER_RUN.findall(value) if _pronounceable(run))
    if words >= 0.5 * sum(c.isalnum() for c in value):
        return False
    # what is left must not be repetitive ("aaaaaaaabbbbbbbb", "1234123412341234")
    alphabet = 16 if _HEX.match(value) else 10 if value.isdigit() else 64
    return _entropy(value) >= 0.7 * math.log2(min(len(value), alphabet))


def _pronounceable(run: str) -> bool:
    run = run.lower()
    vowels = sum(c in "aeiouy" for c in run)
    return len(run) >= 4 and vowels >= 0.2 * len(run) and _CONSONANT_CLUSTER.search(run) is None


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _comment_hits(source: str) -> Iterator[tuple[int, int, SecretHit]]:
    """Name-based hits in commented-out code (``# api_key = "…"``), which is exported with the cell."""
    # tokenize is slow (pure Python on 3.11): only when a '#' is followed by something worth parsing
    if not any(_CONTEXT_GATE.search(line[line.find("#"):].lower()) for line in source.splitlines() if "#" in line):
        return
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    for tok in tokens:
        if tok.type != tokenize.COMMENT or not _CONTEXT_GATE.search(tok.string.lower()):
            continue
        tree = _parse(tok.string.lstrip("#").strip())
        if tree is None:
            continue
        for name, node, password in _bound_literals(tree, [1]):
            for value in _literal_values(node):
                if _format_matches(value, value.lower()):
                    continue  # the format pass already reported it
                hit = _judge_literal(name, value, tok.start[0], password=password,
                                     piece=isinstance(node, ast.JoinedStr))
                if hit is not None:
                    yield tok.start[0], tok.start[1], hit


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.findall(name)]


def _env_name(name: str) -> str:
    return "_".join(_words(name)).upper() or "SECRET"


def _is_placeholder(value: str) -> bool:
    stripped = value.strip()
    return (len(set(stripped)) <= 2 or _PLACEHOLDER.match(stripped) is not None
            or _PLACEHOLDER_WORDS.search(stripped) is not None)


def _is_prompt(value: str) -> bool:
    # getpass("Password: ") and friends: prose, not a value
    return " " in value.strip() and (value.rstrip().endswith((":", "?")) or "password" in value.lower())


def _preview(value: str) -> str:
    """At most four characters, and never more than a third of the value."""
    return value[: min(4, len(value) // 3)] + "…"
