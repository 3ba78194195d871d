"""Issue 13, point 10: adversarial cells are scanned in bounded time.

The old private-key pattern backtracked exponentially: a PEM header followed by a dozen YAML-like lines took 25 s
and 200 never finished, which hung `nbship check` in CI. A regular expression cannot be interrupted from Python,
so the scan runs in a child process that is killed at the bound; the bound is far above what a linear scan
needs (benchmarks/bench_secret_scan.py prints the measured times) and far below what a backtracking one takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from nbship.secrets import scan_source

BOUND_SECONDS = 20.0

ADVERSARIAL = {
    "pem-then-200-yaml-lines-escaped": "k = '-----BEGIN RSA PRIVATE KEY-----\\n" + "a: b \\n " * 200 + "!'\n",
    "pem-then-200-yaml-lines": 'k = """-----BEGIN RSA PRIVATE KEY-----\n' + "a: b  \n  " * 200 + '!"""\n',
    "pem-headers-repeated": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENC\n" * 3000,
    "url-userinfo-colons": "u = 'x://u:" + "a:" * 50_000 + "'\n",
    "url-schemes-repeated": "postgres://a:b" * 10_000,
    "odbc-spaces": "c = ';password=a" + " " * 50_000 + "b'\n",
    "libpq-many-passwords-on-one-line": "c = 'host=db " + "password=a, " * 10_000 + "'\n",
    "query-keys": "u = 'https://h/p?" + "apikey=&" * 20_000 + "'\n",
    "token-prefixes": "t = '" + "ghp_" + "a" * 40 + "-" + "ghp_a" * 20_000 + "'\n",
    "base64-run-with-marker": "x = 'InByaXZhdGVfa2V5I" + "A" * 200_000 + "==='\n",
    "regex-like-secret": "api_key = '" + "[ab" * 30_000 + "'\n",
    "many-secret-names": "".join(f"api_key_{i} = 'k{i}'\n" for i in range(5_000)),
    "one-long-line-of-literals": "x = [" + "'\u00e9', " * 20_000 + f"api_key := '{'Ab3' * 8}']\n",
    "gate-words": "pass " * 50_000 + "key" + " " * 50_000,
}

_CHILD = textwrap.dedent("""
    import json, sys, time
    from nbship.secrets import scan_source
    cases = json.load(sys.stdin)
    for name, text in cases.items():
        started = time.perf_counter()
        scan_source(text)
        print(name, round(time.perf_counter() - started, 3), flush=True)
""")


def test_adversarial_cells_are_scanned_within_the_bound() -> None:
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(ADVERSARIAL), capture_output=True,
                              text=True, timeout=BOUND_SECONDS, check=True)
    except subprocess.TimeoutExpired as e:
        finished = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"scanning did not finish in {BOUND_SECONDS} s; finished before that:\n{finished}")
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(ADVERSARIAL)


def test_a_real_encrypted_key_with_header_lines_is_still_found() -> None:
    body = "MIIEpAIBAAKCAQEA" + "q8Zr3Kx0P1mN7bVc" * 3
    source = ('KEY = """-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n'
              f'DEK-Info: AES-128-CBC,0A1B2C3D4E5F60718293A4B5C6D7E8F9\n\n{body}\n-----END RSA PRIVATE KEY-----\n"""\n')

    hits = scan_source(source)

    assert [(h.line, h.kind, h.preview) for h in hits] == [(1, "private key", "MIIE…")]
