"""The credential scanner: each kind of secret is found at its line with a four-character preview, ordinary
ML code is left alone, and no value ever leaks into a finding."""

from __future__ import annotations

import string
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbship.secrets import SecretHit, scan_source
from tests.secret_values import assert_no_leak, fake_values

# Fake values, built here so that no real-looking key sits in the repository as one string.
fake = fake_values(20261123)
_UPPER_DIGITS = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_HEXDIGITS = "0123456789abcdef"
_B64 = _ALNUM + "+/"

AWS_ID = "AKIA" + fake(_UPPER_DIGITS, 16)
AWS_SECRET = fake(_B64, 40)
GITHUB = "ghp_" + fake(_ALNUM, 36)
GITHUB_PAT = "github_pat_" + fake(_ALNUM, 22) + "_" + fake(_ALNUM, 59)
GITLAB = "glpat-" + fake(_ALNUM, 20)
SLACK = "xoxb-" + fake(string.digits, 12) + "-" + fake(string.digits, 13) + "-" + fake(_ALNUM, 24)
SLACK_HOOK_SECRET = fake(_ALNUM, 24)
GOOGLE = "AIza" + fake(_ALNUM + "_-", 35)
STRIPE = "sk_live_" + fake(_ALNUM, 24)
OPENAI = "sk-proj-" + fake(_ALNUM, 48)
OPENAI_LEGACY = "sk-" + fake(_ALNUM, 48)
ANTHROPIC = "sk-ant-api03-" + fake(_ALNUM, 40)
HF = "hf_" + fake(string.ascii_letters, 34)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ" + fake(_ALNUM, 40) + "." + fake(_ALNUM + "_-", 43)
AZURE_KEY = fake(_B64, 86) + "=="
DB_PASSWORD = "Tr0ub4dor_" + fake(_ALNUM, 6)
RANDOM_KEY = fake(_ALNUM, 32)
PEM_BODY = "MIIEpAIBAAKCAQEA" + fake(_B64, 48)
HEX_SECRET = fake(_HEXDIGITS, 64)


def scan(source: str) -> list[SecretHit]:
    return scan_source(textwrap.dedent(source))


# (source, value, line, kind, suggested_env)
TRUE_POSITIVES = [
    pytest.param(f'import boto3\n\ns3 = boto3.client("s3", aws_access_key_id="{AWS_ID}")\n', AWS_ID, 3,
                 "AWS access key ID", "AWS_ACCESS_KEY_ID", id="aws-access-key-id"),
    pytest.param(f'x = 1\naws_secret_access_key = "{AWS_SECRET}"\n', AWS_SECRET, 2,
                 "AWS secret access key", "AWS_SECRET_ACCESS_KEY", id="aws-secret-assigned"),
    pytest.param(f'session = Session(aws_secret_access_key="{AWS_SECRET}")\n', AWS_SECRET, 1,
                 "AWS secret access key", "AWS_SECRET_ACCESS_KEY", id="aws-secret-keyword"),
    pytest.param(f'CREDENTIALS = """\n[default]\naws_secret_access_key = {AWS_SECRET}\n"""\n', AWS_SECRET, 3,
                 "AWS secret access key", "AWS_SECRET_ACCESS_KEY", id="aws-secret-in-credentials-file-text"),
    pytest.param(f'KEY = """\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n'
                 '-----END RSA PRIVATE KEY-----\n"""\n', PEM_BODY, 2,
                 "private key", "PRIVATE_KEY", id="pem-private-key"),
    pytest.param(f'key = "-----BEGIN OPENSSH PRIVATE KEY-----\\n{PEM_BODY}\\n"\n',
                 PEM_BODY, 1, "private key", "PRIVATE_KEY", id="pem-one-line-escaped"),
    pytest.param(f'gh = Github("{GITHUB}")\n', GITHUB, 1, "GitHub token", "GITHUB_TOKEN", id="github-classic"),
    pytest.param(f'\n\nheaders = {{"Authorization": "token {GITHUB_PAT}"}}\n', GITHUB_PAT, 3,
                 "GitHub token", "GITHUB_TOKEN", id="github-fine-grained"),
    pytest.param(f'gl = gitlab.Gitlab("https://gitlab.com", private_token="{GITLAB}")\n', GITLAB, 1,
                 "GitLab token", "GITLAB_TOKEN", id="gitlab"),
    pytest.param(f'client = WebClient(token="{SLACK}")\n', SLACK, 1, "Slack token", "SLACK_TOKEN", id="slack"),
    pytest.param(f'requests.post("https://hooks.slack.com/services/T0ABC1234/B0DEF5678/{SLACK_HOOK_SECRET}")\n',
                 SLACK_HOOK_SECRET, 1, "Slack webhook URL", "SLACK_WEBHOOK_URL", id="slack-webhook"),
    pytest.param(f'genai.configure(api_key="{GOOGLE}")\n', GOOGLE, 1, "Google API key", "GOOGLE_API_KEY",
                 id="google"),
    pytest.param(f'import stripe\nstripe.api_key = "{STRIPE}"\n', STRIPE, 2, "Stripe live key", "STRIPE_API_KEY",
                 id="stripe-live"),
    pytest.param(f'client = OpenAI(api_key="{OPENAI}")\n', OPENAI, 1, "OpenAI API key", "OPENAI_API_KEY",
                 id="openai-project"),
    pytest.param(f'openai.api_key = "{OPENAI_LEGACY}"\n', OPENAI_LEGACY, 1, "OpenAI API key", "OPENAI_API_KEY",
                 id="openai-legacy"),
    pytest.param(f'os.environ["ANTHROPIC_API_KEY"] = "{ANTHROPIC}"\n', ANTHROPIC, 1, "Anthropic API key",
                 "ANTHROPIC_API_KEY", id="anthropic"),
    pytest.param(f'from huggingface_hub import login\nlogin(token="{HF}")\n', HF, 2, "Hugging Face token",
                 "HF_TOKEN", id="hugging-face"),
    pytest.param(f'headers = {{"Authorization": "Bearer {JWT}"}}\n', JWT, 1, "JSON Web Token", "API_TOKEN",
                 id="jwt"),
    pytest.param(f'SERVICE_JWT = "{JWT}"\n', JWT, 1, "JSON Web Token", "SERVICE_JWT", id="jwt-named-by-variable"),
    pytest.param(f'conn = ("DefaultEndpointsProtocol=https;AccountName=mlstore;"\n'
                 f'        "AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net")\n', AZURE_KEY, 2,
                 "Azure storage account key", "AZURE_STORAGE_CONNECTION_STRING", id="azure-connection-string"),
    pytest.param(f'engine = create_engine("postgresql+psycopg2://ml_user:{DB_PASSWORD}@db.internal:5432/churn")\n',
                 DB_PASSWORD, 1, "password in a URL", "DATABASE_URL", id="sqlalchemy-url"),
    pytest.param(f'r = redis.Redis.from_url("rediss://default:{DB_PASSWORD}@cache.internal:6380/0")\n',
                 DB_PASSWORD, 1, "password in a URL", "REDIS_URL", id="redis-url"),
    pytest.param(f'WAREHOUSE_URL = "snowflake://analyst:{DB_PASSWORD}@acme-xy12345/db"\n', DB_PASSWORD, 1,
                 "password in a URL", "WAREHOUSE_URL", id="url-named-by-variable"),
    pytest.param(f'jdbc = "jdbc:postgresql://db:5432/x?user=etl&password={DB_PASSWORD}"\n', DB_PASSWORD, 1,
                 "password in a URL", "DATABASE_URL", id="url-query-password"),
    pytest.param(f'cnxn = pyodbc.connect("DRIVER={{ODBC Driver 18}};SERVER=sql01;UID=sa;PWD={DB_PASSWORD};")\n',
                 DB_PASSWORD, 1, "password in a connection string", "DATABASE_URL", id="odbc-connection-string"),
    pytest.param(f'cs = "Server=tcp:sql01,1433;Database=churn;User ID=etl;Password={DB_PASSWORD};Encrypt=yes"\n',
                 DB_PASSWORD, 1, "password in a connection string", "DATABASE_URL", id="ado-connection-string"),
    pytest.param(f'\napi_key = "{RANDOM_KEY}"\n', RANDOM_KEY, 2, "high-entropy string assigned to 'api_key'",
                 "API_KEY", id="entropy-assignment"),
    pytest.param(f'class Client:\n    def __init__(self):\n        self.token = "{RANDOM_KEY}"\n', RANDOM_KEY, 3,
                 "high-entropy string assigned to 'token'", "TOKEN", id="entropy-attribute"),
    pytest.param(f'SECRET_KEY: str = "{HEX_SECRET}"\n', HEX_SECRET, 1,
                 "high-entropy string assigned to 'SECRET_KEY'", "SECRET_KEY", id="entropy-annotated-hex"),
    pytest.param(f'client = Mixpanel(project_token="{RANDOM_KEY}")\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'project_token'", "PROJECT_TOKEN", id="entropy-keyword"),
    pytest.param(f'cfg = {{"endpoint": "https://api.acme.io", "clientSecret": "{RANDOM_KEY}"}}\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'clientSecret'", "CLIENT_SECRET", id="entropy-dict-camel-case"),
    pytest.param(f'os.environ["WANDB_API_KEY"] = "{RANDOM_KEY}"\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'WANDB_API_KEY'", "WANDB_API_KEY", id="entropy-os-environ"),
    pytest.param(f'os.environ.setdefault("COMET_TOKEN", "{RANDOM_KEY}")\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'COMET_TOKEN'", "COMET_TOKEN", id="entropy-setdefault"),
    pytest.param(f'key = os.getenv("NEPTUNE_API_TOKEN", "{RANDOM_KEY}")\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'NEPTUNE_API_TOKEN'", "NEPTUNE_API_TOKEN",
                 id="entropy-getenv-default"),
    pytest.param(f'def fetch(url, auth_token="{RANDOM_KEY}"):\n    pass\n', RANDOM_KEY, 1,
                 "high-entropy string assigned to 'auth_token'", "AUTH_TOKEN", id="entropy-function-default"),
    pytest.param('db_password = "hunter2hunter"\n', "hunter2hunter", 1, "password assigned to 'db_password'",
                 "DB_PASSWORD", id="password-low-entropy"),
    pytest.param('conf = {"user": "etl", "passwd": "winter2024!"}\n', "winter2024!", 1,
                 "password assigned to 'passwd'", "PASSWD", id="password-dict"),
    pytest.param('r = requests.get(url, auth=("admin", "letmein42"))\n', "letmein42", 1,
                 "password assigned to 'auth'", "AUTH", id="password-requests-auth-tuple"),
]


@pytest.mark.parametrize(("source", "value", "line", "kind", "env"), TRUE_POSITIVES)
def test_each_kind_is_found_at_its_line_with_a_short_preview(
    source: str, value: str, line: int, kind: str, env: str
) -> None:
    hits = scan_source(source)

    assert [(h.line, h.kind, h.suggested_env) for h in hits] == [(line, kind, env)]
    # four characters, and never more than a third of a short value
    assert hits[0].preview == value[: min(4, len(value) // 3)] + "…"
    assert_no_leak(hits, value)


FALSE_POSITIVES = {
    "sha256-digest": f'MODEL_SHA256 = "{fake(_HEXDIGITS, 64)}"\n',
    "md5-checksum": f'checksum = "{fake(_HEXDIGITS, 32)}"\nexpected_md5 = checksum\n',
    "digest-as-cache-key": f'cache_key = "{fake(_HEXDIGITS, 40)}"\n',
    "uuid-run-id": 'run_id = "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"\n',
    "uuid-idempotency-key": 'idempotency_key = "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"\n',
    "model-id": 'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")\nmodel_key = "bert-base-uncased"\n',
    "model-key-words": 'model_key = "xgboost-churn-prediction-2024-q3"\ncache_key = "model_v3_2024_embeddings_cache"\n',
    "token-counts": "max_tokens = 512\nnum_tokens = len(tokens)\nout = llm(prompt, max_tokens=256)\n",
    "special-tokens": 'tokenizer.add_special_tokens({"pad_token": "[PAD]", "eos_token": "<|endoftext|>"})\n'
                      'bos_token = "<|begin_of_text|>"\n',
    "sort-key": 'sort_key = "date"\ndf = df.sort_values("signup_date", key=lambda s: s.str.lower())\n',
    "primary-key": 'primary_key = "customer_id"\nkey = "monthly_charges"\n',
    "paths": 'key_file = "/var/run/secrets/key.json"\nssh_key = "~/.ssh/id_ed25519"\n'
             'pwd = "/home/jovyan/work/churn"\ntoken_path = "./artifacts/tokenizer.json"\n',
    "urls-without-credentials": 'API_URL = "https://api.example.com/v1/predict?token_type=bearer"\n'
                                'MODEL_URI = "s3://ml-models/churn/model.pkl"\nrepo = "git@github.com:acme/ml.git"\n'
                                'auth_url = "https://login.example.com/oauth2/token"\n',
    "image-base64": f'logo_png = "iVBORw0KGgo{fake(_B64, 400)}=="\n',
    "feature-list": 'FEATURES = "tenure,monthly_charges,total_charges,contract_type,payment_method,gender"\n'
                    'key_features = "tenure_monthly_charges_contract_type"\n',
    "regexes": 'token_pattern = r"(?u)\\b\\w\\w+\\b"\nsecret_token = r"[-!#$%&*+.^_|~0-9a-zA-Z]+"\n'
               'REDACT = re.compile(r"sk-[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}")\n',
    "placeholders": 'api_key = ""\npassword = "changeme"\ntoken = "xxxxxxxxxxxxxxxxxxxxxxxx"\n'
                    'OPENAI_API_KEY = "<your-key>"\nsecret = "${CLIENT_SECRET}"\ndb_password = "****"\n'
                    'HF_TOKEN = "your_api_key_here"\nGITHUB_TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"\n',
    "from-environment": 'import os\napi_key = os.environ["OPENAI_API_KEY"]\ntoken = os.getenv("HF_TOKEN")\n'
                        'password = os.environ.get("DB_PASSWORD", "")\nsecret = getpass.getpass("Password: ")\n',
    "templated-urls": 'url = "postgresql://{user}:{password}@{host}/db"\n'
                      'uri = "postgresql://%s:%s@%s/db" % (user, pw, host)\n'
                      'dsn = f"postgresql://{user}:{os.environ[\'PGPASSWORD\']}@{host}/db"\n'
                      'DB = "mysql://app:${DB_PASSWORD}@db/app"\n',
    "env-var-names": 'password_env = "DB_PASSWORD"\nSECRET_NAME = "churn-db-credentials"\n'
                     'API_KEY_HEADER = "X-API-Key"\nauth = "oauth2"\n',
    "repetitive-values": 'session_token = "1234123412341234"\napi_key = "a1b2a1b2a1b2a1b2a1b2"\n',
    "token-shape-inside-longer-base64url": f'state = "{fake(_ALNUM + "-_", 40)}ghp_{fake(_ALNUM, 36)}"\n',
    "pem-header-only": 'if pem.startswith("-----BEGIN RSA PRIVATE KEY-----"):\n    kind = "rsa"\n',
    "prose": '"""Reads the api_key and password from the environment; never hard-code a token."""\n'
             "# the token is refreshed every hour\n",
}


@pytest.mark.parametrize("source", FALSE_POSITIVES.values(), ids=FALSE_POSITIVES.keys())
def test_ordinary_ml_code_yields_nothing(source: str) -> None:
    assert scan_source(source) == []


def test_token_in_a_comment_is_found() -> None:
    source = f"import openai\n# old key, rotated: {OPENAI}\nclient = openai.OpenAI()\n"

    hits = scan_source(source)

    assert [(h.line, h.kind, h.preview) for h in hits] == [(2, "OpenAI API key", "sk-p…")]
    assert_no_leak(hits, OPENAI)


def test_commented_out_assignment_is_found() -> None:
    # comments are exported with the cell, so a commented-out secret ends up in the image too
    source = f'x = 1\n# api_key = "{RANDOM_KEY}"\n#password = "hunter2hunter"\n'

    hits = scan_source(source)

    assert [(h.line, h.kind, h.suggested_env) for h in hits] == [
        (2, "high-entropy string assigned to 'api_key'", "API_KEY"),
        (3, "password assigned to 'password'", "PASSWORD"),
    ]
    assert_no_leak(hits, RANDOM_KEY)


def test_literal_password_inside_an_f_string_url_is_found() -> None:
    source = f'host = "db"\nurl = f"postgresql://{{user}}:{DB_PASSWORD}@{{host}}:5432/churn"\n'

    hits = scan_source(source)

    assert [(h.line, h.kind, h.preview) for h in hits] == [(2, "password in a URL", DB_PASSWORD[:4] + "…")]


def test_f_string_built_from_the_environment_is_not_a_secret() -> None:
    source = 'token = f"Bearer {os.environ[\'API_TOKEN\']}"\nheaders = {"Authorization": f"Bearer {token}"}\n'

    assert scan_source(source) == []


def test_code_that_does_not_parse_is_still_scanned_for_token_formats() -> None:
    source = f'def broken(:\n    pass\n\ns3 = boto3.client("s3", aws_access_key_id="{AWS_ID}"\n# {GITHUB}\n'

    hits = scan_source(source)

    assert [(h.line, h.kind) for h in hits] == [(4, "AWS access key ID"), (5, "GitHub token")]


def test_findings_are_sorted_by_line_across_passes() -> None:
    source = (
        f'# {GITLAB}\n'                                   # format pass, comment
        f'password = "hunter2hunter"\n'                   # name pass
        f'conn = "mysql://root:{DB_PASSWORD}@db/x"\n'     # format pass, string
        f'# secret = "{RANDOM_KEY}"\n'                    # commented-out code
    )

    assert [h.line for h in scan_source(source)] == [1, 2, 3, 4]


def test_same_secret_seen_by_two_checks_is_reported_once_under_its_precise_kind() -> None:
    source = f'OPENAI_API_KEY = "{OPENAI}"\ngit = "https://bot:{GITHUB}@github.com/acme/ml.git"\n'

    hits = scan_source(source)

    assert [(h.line, h.kind) for h in hits] == [(1, "OpenAI API key"), (2, "GitHub token")]


@pytest.mark.parametrize(("value", "preview"), [
    (RANDOM_KEY, RANDOM_KEY[:4] + "…"),      # long: exactly four characters
    ("hunter2hunt", "hun…"),                # 11 characters: no more than a third of them
    ("pa55wd", "pa…"),                      # 6 characters: two
])
def test_preview_shows_at_most_four_characters(value: str, preview: str) -> None:
    hits = scan_source(f'password = "{value}"\n')

    assert [h.preview for h in hits] == [preview]


def test_no_value_ever_leaks_into_a_hit() -> None:
    randoms = [fake(_ALNUM, n) for n in (16, 24, 40, 64)] + [DB_PASSWORD, AZURE_KEY]
    formats = [AWS_ID, GITHUB, JWT, OPENAI, HF, STRIPE]
    values = randoms + formats
    lines = [f'client_secret_{i} = "{v}"' for i, v in enumerate(values)]
    lines += [f'url_{i} = "https://svc:{v}@api.internal/v1"' for i, v in enumerate(values)]
    lines += [f"# {v}" for v in formats]

    hits = scan_source("\n".join(lines) + "\n")

    assert len({h.line for h in hits}) == len(lines)  # every line found something
    for value in values:
        assert_no_leak(hits, value)
    assert all(len(h.preview) <= 5 and h.preview.endswith("…") for h in hits)


_FRAGMENTS = st.sampled_from([
    "api_key = ", "password=", '"', "'", '"""', "#", " ", "\n", "\n    ", "(", ")", "{", "}", ":", ",", "\\",
    "f'", "{x}", "os.environ[", "]", "postgresql://u:", "@host/db", ";PWD=", "-----BEGIN RSA PRIVATE KEY-----\n",
    "\u00e9", "\r\n", "\f", "\u2028", AWS_ID, RANDOM_KEY, JWT, "hunter2hunter", "def f(token=",
])


@given(st.lists(_FRAGMENTS, max_size=40).map("".join))
def test_any_text_is_scanned_without_error_and_reports_inside_the_cell(source: str) -> None:
    # a cell the scanner chokes on would stop `nbship check` with an internal error instead of a finding
    hits = scan_source(source)

    lines = [h.line for h in hits]
    assert lines == sorted(lines)
    assert all(1 <= line <= source.count("\n") + 1 for line in lines)
    assert all(len(h.preview) <= 5 and h.preview.endswith("…") for h in hits)
