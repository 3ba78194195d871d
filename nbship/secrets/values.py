"""Secrets scan, shared part: judging a found value (a placeholder? random-looking?) and the ``SecretHit`` that
reports it without holding it.

Every regular expression here runs on one literal at a time and is linear in its length: no nested or adjacent
quantifiers over overlapping characters, and the one search that starts at every ``[`` has a bounded reach.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretHit:
    """A credential found in a cell: where, what, a harmless preview and the environment variable to use instead."""

    line: int
    kind: str
    preview: str
    suggested_env: str


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
PATH = re.compile(r"^(?:/|\./|\.\./|~/|[A-Za-z]:\\)|^[\w.\-]+(?:/[\w.\-]+)+\.[A-Za-z][A-Za-z0-9]{0,5}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# a character class's reach is bounded: from every '[' of "[a[a[a…" an unbounded one would scan to the end
_REGEX_SYNTAX = re.compile(r"\[[^\]]{1,64}\][*+?{]|\\[dwsbDWSB]|\(\?|\{\d+(?:,\d*)?\}")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
AUTH_SCHEME = re.compile(r"^(?i:bearer|token|basic)\s+")
_LETTER_RUN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_CONSONANT_CLUSTER = re.compile(r"[^aeiouy]{4}")


def random_part(min_distinct: int) -> Callable[[str], bool]:
    """A format match whose variable part has few distinct characters is a placeholder ("ghp_xxxx…", "AKIA0000…")."""
    return lambda value: len(set(value)) >= min_distinct


def mixed_case(value: str) -> bool:
    """Real keys are random: upper, lower and digits all occur; "sk-learnPipelineFactory…" is a name, not a key."""
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)


def any_value(value: str) -> bool:
    return True


def is_placeholder(value: str) -> bool:
    stripped = value.strip()
    return (len(set(stripped)) <= 2 or _PLACEHOLDER.match(stripped) is not None
            or _PLACEHOLDER_WORDS.search(stripped) is not None)


def is_prompt(value: str) -> bool:
    """getpass("Password: ") and friends: prose, not a value."""
    return " " in value.strip() and (value.rstrip().endswith((":", "?")) or "password" in value.lower())


def looks_random(value: str, strong: bool = True) -> bool:
    """A key/secret/token-like value: long, no spaces, not a word, a path, a URL, a placeholder — and high entropy.

    ``strong``: the name says credential outright (``api_key``), so a UUID or a hex digest counts too; a bare
    ``key`` (``sort_key``, ``cache_key``) holds identifiers as often as credentials.
    """
    if len(value) < 16 or any(c.isspace() for c in value) or "://" in value:
        return False
    if is_placeholder(value) or PATH.search(value) or _REGEX_SYNTAX.search(value):
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


def preview(value: str) -> str:
    """At most four characters, and never more than a third of the value."""
    return value[: min(4, len(value) // 3)] + "…"
