"""Secrets scan, second pass (``ast``): string literals bound to a secret-like name → ``SecretHit``s.

Bindings read: assignments, keyword arguments, dict entries, ``os.environ[...] =``, ``setdefault``/``getenv``/
``get`` defaults, function defaults, the password of ``HTTPBasicAuth("user", "…")`` and the ``key=`` of a
``login(…)`` call. The name's last word judges the value: password-like names flag any real-looking value,
key/secret/token names only random-looking ones. Comments (found with ``tokenize``) are parsed the same way:
commented-out code is copied into the image too.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

from nbship.secrets.formats import format_matches
from nbship.secrets.values import AUTH_SCHEME, PATH, SecretHit, is_placeholder, is_prompt, looks_random, preview

# Gate for the ``ast`` pass, on the lower-cased source: an identifier or key ending in a secret-like word, then
# `=`, `:` or `,` and soon a quote (``api_key = "``, ``api_key: str = "``, ``"password": "``, ``("X_TOKEN", "``,
# ``auth=("``, ``password, user = "``), or a basic-auth constructor. ``tokenizer`` and ``max_tokens`` do not
# pass: most ML code skips ``ast``. Every repetition is bounded, so the gate is linear in the source.
CONTEXT_GATE = re.compile(
    r"(?:key|secrets?|token|credentials?|creds|auth|authorization|passw(?:or)?d|pwd|pw|pass|passphrase|passcode)"
    r"_?\d{0,4}['\"]?\]?\s{0,20}[=:,][^'\"]{0,40}['\"]|(?:basic|digest|proxy)auth\(")
_WORD_SPLIT = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

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
# requests/httpx/aiohttp: the second positional argument is a password
_BASIC_AUTH = frozenset({"HTTPBasicAuth", "HTTPDigestAuth", "HTTPProxyAuth", "BasicAuth", "DigestAuth"})
# wandb.login(key=…) and the like: a bare "key" handed to a login call is an API key, hex or not
_LOGIN_CALLS = frozenset({"login", "authenticate", "auth"})


@dataclass(frozen=True)
class Bound:
    """A string literal bound to a name; ``label`` says how (``assigned to 'api_key'``)."""

    name: str
    node: ast.expr
    password: bool  # the value is a password whatever the name
    label: str = ""


def parse(source: str) -> ast.Module | None:
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


def bound_literals(tree: ast.AST, lines: list[int]) -> Iterator[Bound]:
    """String literals bound to names on ``lines``."""
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
        elif isinstance(node, ast.Call):
            yield from _call_arguments(node)
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            for arg, default in zip(positional[len(positional) - len(node.defaults):], node.defaults, strict=True):
                yield from _pairs(arg.arg, default)
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if kw_default is not None:
                    yield from _pairs(arg.arg, kw_default)


def _call_arguments(node: ast.Call) -> Iterator[Bound]:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0] if node.args else None
    if len(node.args) >= 2 and called in {"setdefault", "getenv", "putenv", "get"} \
            and isinstance(first, ast.Constant) and isinstance(first.value, str):
        # os.environ.setdefault("X_TOKEN", "…"), os.getenv("DB_PASSWORD", "…"), os.putenv(…), cfg.get(…)
        yield from _pairs(first.value, node.args[1])
    elif len(node.args) >= 2 and called in _BASIC_AUTH and _is_literal(node.args[1]):
        yield Bound("http_password", node.args[1], True, f"passed to {called}()")
    elif called in _LOGIN_CALLS:
        owner = func.value if isinstance(func, ast.Attribute) else None
        service = owner.id if isinstance(owner, ast.Name) else ""  # wandb.login → WANDB_API_KEY
        for keyword in node.keywords:
            if keyword.arg == "key" and _is_literal(keyword.value):
                name = f"{service}_api_key" if service else "api_key"
                yield Bound(name, keyword.value, False, f"passed to {service + '.' if service else ''}{called}(key=…)")


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, (ast.Constant, ast.JoinedStr))


def _pairs(target: ast.expr | str, value: ast.expr) -> Iterator[Bound]:
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
    if _is_literal(value):
        yield Bound(name, value, False)
    elif isinstance(value, ast.Tuple) and len(value.elts) == 2 and words(name)[-1:] == ["auth"]:
        # requests' auth=("user", "password")
        yield Bound(name, value.elts[1], True)


def literal_values(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return [node.value]
        if isinstance(node.value, bytes):
            return [node.value.decode("latin-1")]
        return []
    if isinstance(node, ast.JoinedStr):  # only the literal pieces: interpolated values come from elsewhere
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return []


def judge_literal(bound: Bound, value: str, line: int) -> SecretHit | None:
    """The hit for ``value`` bound as ``bound`` says, or None; a literal piece of an f-string is no password."""
    name, piece = bound.name, isinstance(bound.node, ast.JoinedStr)
    label = bound.label or f"assigned to '{name}'"
    found = words(name)
    while found and found[-1].isdigit():  # api_key_2, token1
        found.pop()
    if not found or any(w in _NOT_SECRET_QUALIFIERS for w in found[:-1]):
        return None
    last = found[-1]
    env = env_name(name)
    if (last in _PASSWORD_WORDS or bound.password) and not piece:
        # passwords are chosen by people: low entropy is no evidence against them
        if len(value) >= 6 and not is_placeholder(value) and not PATH.search(value) and not is_prompt(value):
            return SecretHit(line, f"password {label}", preview(value), env)
        return None
    if last not in _SECRET_WORDS:
        return None
    if "secret" in found and ({"aws", "access"} & set(found)) and re.fullmatch(r"[A-Za-z0-9/+]{40}", value):
        return SecretHit(line, "AWS secret access key", preview(value), "AWS_SECRET_ACCESS_KEY")
    strong = last != "key" or any(w in _KEY_QUALIFIERS for w in found[:-1])
    if looks_random(AUTH_SCHEME.sub("", value), strong):
        return SecretHit(line, f"high-entropy string {label}", preview(value), env)
    return None


def comment_hits(source: str) -> Iterator[tuple[int, int, SecretHit]]:
    """Name-based hits in commented-out code (``# api_key = "…"``), which is exported with the cell."""
    # tokenize is slow (pure Python on 3.11): only when a '#' is followed by something worth parsing
    if not any(CONTEXT_GATE.search(line[line.find("#"):].lower()) for line in source.splitlines() if "#" in line):
        return
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    for tok in tokens:
        if tok.type != tokenize.COMMENT or not CONTEXT_GATE.search(tok.string.lower()):
            continue
        tree = parse(tok.string.lstrip("#").strip())
        if tree is None:
            continue
        for bound in bound_literals(tree, [1]):
            for value in literal_values(bound.node):
                if format_matches(value, value.lower()):
                    continue  # the format pass already reported it
                hit = judge_literal(bound, value, tok.start[0])
                if hit is not None:
                    yield tok.start[0], tok.start[1], hit


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.findall(name)]


def env_name(name: str) -> str:
    return "_".join(words(name)).upper() or "SECRET"
