"""Stage 3 check: credentials in the exported code, its ``%env`` and ``%pip install`` lines, and nbship.yaml's
``env:`` and ``requirements:`` → ``Finding``s.

``%env NAME=value`` becomes a setting written into nbship.json, inside the image; ``env:`` values go into the
ConfigMap, readable by anyone who may read the namespace. Both are scanned as the code ``NAME = "value"``, and a
credential in either is an error whose hint points at ``secrets:``. Requirements are written into
requirements.lock and installed in the image: a credential in one is an error whose hint points at pip's own
settings, which reach the builder stage only.
"""

from __future__ import annotations

import re
from pathlib import Path

from nbship.config import CONFIG_FILE, Config
from nbship.config_errors import key_line
from nbship.errors import Finding, Location
from nbship.extract import ServiceCode
from nbship.secrets import REQUIREMENT_HINT, SecretHit, scan_requirement, scan_setting, scan_source

# a %pip / !pip install line of an exported cell (an untagged cell's requirements are judged at lock time, if the
# service needs their package)
_PIP_INSTALL = re.compile(r"\s*[%!]\s*(?:pip3?|python[0-9.]*\s+-m\s+pip)\s+install\b")


def secret_findings(notebook: str, code: ServiceCode, config: Config, config_path: Path | None) -> list[Finding]:
    """Errors for every credential in the exported cells, their ``%env`` settings and ``%pip install`` lines, and
    ``requirements:`` and ``env:`` of ``config``."""
    findings = []
    for clean in code.cells:
        for hit in scan_source(clean.source):
            findings.append(Finding(
                "error", "secret", _looks_like(hit), Location(notebook, clean.cell.number, hit.line),
                f'Read it from os.environ["{hit.suggested_env}"] and {_secrets_entry(hit.suggested_env)}.',
            ))
    for name, value in sorted(code.settings.items()):
        cell, line = code.setting_lines.get(name, (None, None))
        for hit in scan_setting(name, value):
            findings.append(Finding(
                "error", "secret", f"%env {name}: {_looks_like(hit)}", Location(notebook, cell, line),
                f"%env values are written into the image: remove the line and {_secrets_entry(name)}.",
            ))
    for clean in code.cells:  # the whole line, options included (-i https://user:token@host/simple)
        for number, line_text in enumerate(clean.cell.source.split("\n"), start=1):
            if _PIP_INSTALL.match(line_text):
                findings += [Finding("error", "secret", f"%pip install: {_looks_like(hit)}",
                                     Location(notebook, clean.cell.number, number), REQUIREMENT_HINT)
                             for hit in scan_requirement(line_text)]
    file = config_path.name if config_path is not None else CONFIG_FILE
    for i, spec in enumerate(config.requirements):
        line = key_line(config_path, ("requirements", str(i))) if config_path is not None else None
        findings += [Finding("error", "secret", f"requirements[{i}]: {_looks_like(hit)}", Location(file, None, line),
                             REQUIREMENT_HINT)
                     for hit in scan_requirement(spec)]
    for name, value in sorted(config.env.items()):
        line = key_line(config_path, ("env", name)) if config_path is not None else None
        for hit in scan_setting(name, value):
            findings.append(Finding(
                "error", "secret", f"env.{name}: {_looks_like(hit)}", Location(file, None, line),
                "env: values go into a ConfigMap, readable by anyone who can read the namespace: move it from "
                f"env: to secrets: ({_secret_ref(name)}).",
            ))
    return findings


def _looks_like(hit: SecretHit) -> str:
    article = "an" if hit.kind[:1].lower() in "aeio" or hit.kind.startswith("high-") else "a"
    return f"looks like {article} {hit.kind} ('{hit.preview}')"


def _secret_ref(env: str) -> str:
    return f"{{env: {env}, secret: <secret name>, key: <key>}}"


def _secrets_entry(env: str) -> str:
    return f"list it under `secrets:` in nbship.yaml ({_secret_ref(env)}) so Kubernetes fills it from a Secret"
