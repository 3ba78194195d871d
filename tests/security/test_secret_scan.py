"""Issue 13, point 9: each credential the scanner used to miss is found at its line, under a precise kind, with no
more than a four-character preview; the example notebooks still yield nothing."""

from __future__ import annotations

import base64
import json
import string
from pathlib import Path

import pytest

from nbship.secrets import scan_source
from tests.secret_values import assert_no_leak, fake_values

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notebooks"

# Fake values, built here so that no real-looking key sits in the repository as one string.
fake = fake_values(20261130)
_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"

GITHUB = "ghp_" + fake(_ALNUM, 36)
URL_TOKEN = fake(_ALNUM, 40)
DB_PASSWORD = "Tr0ub4dor_" + fake(_ALNUM, 6)
WANDB = fake("0123456789abcdef", 40)
PEM_LINES = ["MIIEpAIBAAKCAQEA" + fake(_B64, 48), fake(_B64, 64), fake(_B64, 64)]
API_KEY = fake(_ALNUM, 32)
SENDGRID = "SG." + fake(_ALNUM + "_-", 22) + "." + fake(_ALNUM + "_-", 43)
SERVICE_ACCOUNT = base64.b64encode(json.dumps({
    "type": "service_account", "project_id": "churn-prod", "private_key_id": fake("0123456789abcdef", 40),
    "private_key": "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_LINES) + "\n-----END PRIVATE KEY-----\n",
    "client_email": "nbship@churn-prod.iam.gserviceaccount.com",
}, indent=2).encode()).decode()
PEM_PKCS8 = base64.b64encode(("-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_LINES)).encode()).decode()


# (source, value, line, kind, suggested_env)
MISSES = [
    pytest.param(f'repo = "https://{GITHUB}@github.com/acme/models.git"\n', GITHUB, 1, "GitHub token",
                 "GITHUB_TOKEN", id="known-token-as-url-user"),
    pytest.param(f'\nsubprocess.run(["git", "clone", "https://{URL_TOKEN}@git.acme.io/ml/churn.git"])\n', URL_TOKEN,
                 2, "token in a URL", "SERVICE_URL", id="random-token-as-url-user"),
    pytest.param(f'conn = psycopg2.connect("host=db user=admin password={DB_PASSWORD} dbname=prod")\n', DB_PASSWORD,
                 1, "password in a connection string", "DATABASE_URL", id="libpq-dsn"),
    pytest.param(f"PG_DSN = \"host=db.internal port=5432 dbname=prod user=etl password='{DB_PASSWORD}'\"\n",
                 DB_PASSWORD, 1, "password in a connection string", "PG_DSN", id="libpq-dsn-quoted-value"),
    pytest.param(f'import wandb\nwandb.login(key="{WANDB}")\n', WANDB, 2,
                 "high-entropy string passed to wandb.login(key=…)", "WANDB_API_KEY", id="wandb-login-hex-key"),
    pytest.param('KEY = ("-----BEGIN RSA PRIVATE KEY-----\\n"\n'
                 + "".join(f'       "{line}\\n"\n' for line in PEM_LINES)
                 + '       "-----END RSA PRIVATE KEY-----\\n")\n', PEM_LINES[0], 1, "private key", "PRIVATE_KEY",
                 id="pem-implicit-concatenation"),
    pytest.param('key = "\\n".join([\n    "-----BEGIN PRIVATE KEY-----",\n'
                 + "".join(f'    "{line}",\n' for line in PEM_LINES)
                 + '    "-----END PRIVATE KEY-----",\n])\n', PEM_LINES[0], 2, "private key", "PRIVATE_KEY",
                 id="pem-newline-join"),
    pytest.param('key = ("-----BEGIN EC PRIVATE KEY-----" + "\\n" +\n' + f'       b"{PEM_LINES[0]}")\n', PEM_LINES[0],
                 1, "private key", "PRIVATE_KEY", id="pem-plus-concatenation"),
    pytest.param(f'creds = json.loads(base64.b64decode("{SERVICE_ACCOUNT}"))\n', SERVICE_ACCOUNT, 1,
                 "base64-encoded service-account key", "GOOGLE_SERVICE_ACCOUNT_KEY", id="base64-service-account"),
    pytest.param(f'TLS_KEY_B64 = "{PEM_PKCS8}"\n', PEM_PKCS8, 1, "base64-encoded private key", "PRIVATE_KEY",
                 id="base64-pem-key"),
    pytest.param(f'r = requests.get(url, auth=HTTPBasicAuth("admin", "{DB_PASSWORD}"))\n', DB_PASSWORD, 1,
                 "password passed to HTTPBasicAuth()", "HTTP_PASSWORD", id="http-basic-auth"),
    pytest.param(f'auth = aiohttp.BasicAuth("etl", "{DB_PASSWORD}")\n', DB_PASSWORD, 1,
                 "password passed to BasicAuth()", "HTTP_PASSWORD", id="aiohttp-basic-auth"),
    pytest.param(f'resp = requests.get("https://api.weather.io/v2/forecast?city=Oslo&apikey={API_KEY}")\n', API_KEY, 1,
                 "API key in a URL", "API_KEY", id="apikey-query"),
    pytest.param(f'FEED_URL = "https://feeds.acme.io/v1/prices?access_token={API_KEY}&format=json"\n', API_KEY, 1,
                 "API key in a URL", "FEED_URL", id="access-token-query-named-by-variable"),
    pytest.param(f'sg = SendGridAPIClient("{SENDGRID}")\n', SENDGRID, 1, "SendGrid API key", "SENDGRID_API_KEY",
                 id="sendgrid"),
]


@pytest.mark.parametrize(("source", "value", "line", "kind", "env"), MISSES)
def test_each_reported_miss_is_found(source: str, value: str, line: int, kind: str, env: str) -> None:
    hits = scan_source(source)

    assert [(h.line, h.kind, h.suggested_env) for h in hits] == [(line, kind, env)]
    assert hits[0].preview == value[: min(4, len(value) // 3)] + "…"
    assert_no_leak(hits, value)


NEAR_MISSES = {
    "libpq-keyword-arguments": "conn = psycopg2.connect(host=host, user=user, password=password, dbname=db)\n"
                               "conn = psycopg2.connect(\n    host=host,\n    password=db_password\n)\n",
    "libpq-dsn-from-environment": 'dsn = f"host={host} user={user} password={os.environ[\'PGPASSWORD\']} dbname=x"\n',
    "wandb-login-from-environment": 'wandb.login(key=os.environ["WANDB_API_KEY"])\nwandb.login(anonymous="allow")\n',
    "basic-auth-from-environment": 'auth = HTTPBasicAuth("admin", os.environ["API_PASSWORD"])\n',
    "url-user-without-secret": 'repo = "https://git@github.com/acme/models.git"\n'
                               'ssh = "ssh://deploy-user-for-models@git.acme.io/ml.git"\n',
    "query-placeholders": 'url = f"https://api.weather.io/v2?apikey={api_key}"\n'
                          'url = "https://api.weather.io/v2?apikey=" + api_key\n'
                          'DOCS = "https://docs.acme.io/search?key=model_registry_overview"\n',
    "public-key-pem": 'PUB = "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\\n"\n',
    "base64-image": f'logo = "iVBORw0KGgo{fake(_B64, 400)}=="\n',
    "sendgrid-word": 'msg = "see SG.Sections.Overview in the docs"\n',
}


@pytest.mark.parametrize("source", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_near_misses_of_the_new_checks_yield_nothing(source: str) -> None:
    assert scan_source(source) == []


def test_example_notebooks_yield_no_finding_in_any_code_cell() -> None:
    # precision as before on the real, executed examples: every code cell, exported or not
    notebooks = sorted(EXAMPLES.glob("*/*.ipynb"))
    assert len(notebooks) >= 3
    for path in notebooks:
        for number, cell in enumerate(json.loads(path.read_text())["cells"], 1):
            if cell["cell_type"] == "code":
                assert scan_source("".join(cell["source"])) == [], f"{path.name}, cell {number}"
