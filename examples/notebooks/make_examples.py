"""Examples stage: build, execute and save the three example notebooks with their artifacts.

The notebooks under ``examples/notebooks/`` are what nbship is demonstrated and golden-tested on, so they must be
realistic (a data scientist's story: exploration cells around the tagged serving cells), small and byte-for-byte
reproducible. This script writes the inputs a real project would already have (``data/customers.csv``, the
upstream encoder weights ``weights/encoder.npz``, the ``nbship.yaml`` files), builds each notebook cell by cell,
executes it with nbclient in its own folder (its untagged training cells write the artifacts the ``load`` cells
read) and saves it with its real outputs.

Run from the repository root (needs ``nbclient`` and ``ipykernel`` in the venv)::

    .venv/bin/python examples/notebooks/make_examples.py            # all three
    .venv/bin/python examples/notebooks/make_examples.py churn      # one of: churn, sentiment, embeddings
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
ENCODER_URI = "https://models.example.com/nbship/encoder-v3.npz"
# a fixed timestamp for the zip entries of the .npz, whose sha256 is pinned in nbship.yaml
_ZIP_TIME = (2024, 5, 1, 0, 0, 0)
# magics whose output is a wall-clock measurement: kept as cells, their output cleared so reruns give identical bytes
_TIMING_MAGICS = ("%%time", "%time ", "%%timeit", "%timeit")

Cell = dict[str, Any]


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def md(text: str) -> Cell:
    return {"kind": "markdown", "source": _src(text)}


def code(text: str, *tags: str) -> Cell:
    return {"kind": "code", "source": _src(text), "tags": list(tags)}


# --------------------------------------------------------------------------------------------------------------
# 1. tabular churn
# --------------------------------------------------------------------------------------------------------------


def write_customers_csv(folder: Path) -> None:
    """The CRM export the churn notebook starts from: 600 synthetic customers, fixed seed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(20240501)
    n = 600
    tenure = rng.integers(1, 73, size=n)
    long_tenure = tenure / 72
    contracts = ["month-to-month", "one-year", "two-year"]
    contract = np.array(
        [
            rng.choice(contracts, p=[0.75 - 0.45 * t, 0.15 + 0.15 * t, 0.10 + 0.30 * t])
            for t in long_tenure
        ]
    )
    internet = rng.choice(["fiber", "dsl", "none"], size=n, p=[0.45, 0.35, 0.20])
    base = np.select([internet == "fiber", internet == "dsl"], [82.0, 55.0], 22.0)
    monthly = np.clip(base + rng.normal(0, 9, size=n) + rng.integers(0, 3, size=n) * 6.5, 18.25, 118.75).round(2)
    total = (monthly * tenure * rng.uniform(0.92, 1.04, size=n)).round(2)
    support_calls = rng.poisson(0.8 + 1.2 * (internet == "fiber"), size=n)
    paperless = rng.random(n) < 0.6
    payment = rng.choice(
        ["electronic_check", "credit_card", "bank_transfer", "mailed_check"], size=n, p=[0.35, 0.25, 0.22, 0.18]
    )
    logit = (
        -2.0
        + 1.5 * (contract == "month-to-month")
        - 1.0 * (contract == "two-year")
        - 0.035 * tenure
        + 0.7 * (internet == "fiber")
        + 0.38 * support_calls
        + 0.55 * (payment == "electronic_check")
        + 0.25 * paperless
        + 0.012 * (monthly - 65)
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{10000 + i}" for i in range(n)],
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support_calls,
            "paperless_billing": paperless,
            "payment_method": payment,
            "churned": churned,
        }
    )
    # the CRM leaves total_charges blank for a few accounts whose first bill is not out yet
    blank = rng.choice(np.flatnonzero(tenure <= 2), size=4, replace=False)
    frame["total_charges"] = frame["total_charges"].astype(object)
    frame.loc[blank, "total_charges"] = None
    (folder / "data").mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data" / "customers.csv", index=False, lineterminator="\n")


CHURN_YAML = """\
# nbship.yaml — how the churn model is served
name: churn-model
version: 1.0.0
resources:
  requests:
    cpu: 250m
    memory: 256Mi
  limits:
    cpu: "1"
    memory: 512Mi
replicas: 2
autoscaling:
  min_replicas: 2
  max_replicas: 4
"""


def churn_cells() -> list[Cell]:
    return [
        md(
            """
            # Customer churn — which customers are about to leave?

            The retention team wants a score per customer, refreshed whenever the CRM record changes, so they can
            call the customers most at risk. This notebook explores last quarter's CRM export
            (`data/customers.csv`), engineers a few features, trains a logistic-regression model and serves it.

            Serving cells are tagged `nbship:<role>`; everything untagged is exploration.
            """
        ),
        code(
            """
            %load_ext autoreload
            %autoreload 2

            import numpy as np
            import pandas as pd
            from sklearn.compose import ColumnTransformer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline
            from sklearn.preprocessing import OneHotEncoder, StandardScaler

            RAW_COLUMNS = [
                "tenure_months",
                "contract",
                "internet_service",
                "monthly_charges",
                "total_charges",
                "support_calls",
                "paperless_billing",
                "payment_method",
            ]
            NUMERIC_FEATURES = [
                "tenure_months",
                "monthly_charges",
                "charges_ratio",
                "calls_per_year",
                "paperless_billing",
            ]
            CATEGORICAL_FEATURES = ["contract", "internet_service", "payment_method", "tenure_bucket"]
            TENURE_BINS = [0, 6, 12, 24, 48, 1000]
            TENURE_LABELS = ["0-6m", "6-12m", "1-2y", "2-4y", "4y+"]


            def add_features(frame: pd.DataFrame) -> pd.DataFrame:
                \"\"\"Raw CRM columns -> model features (same code for training and serving).\"\"\"
                out = frame.copy()
                expected_total = out["monthly_charges"] * out["tenure_months"]
                # total_charges is blank until the first bill: assume the customer paid the list price
                total = pd.to_numeric(out["total_charges"], errors="coerce").fillna(expected_total)
                out["total_charges"] = total
                # < 1 means discounts or missed payments, > 1 means add-ons on top of the plan
                out["charges_ratio"] = (total / expected_total.clip(lower=1.0)).round(4)
                out["calls_per_year"] = out["support_calls"] / (out["tenure_months"] / 12).clip(lower=1.0)
                out["tenure_bucket"] = pd.cut(out["tenure_months"], bins=TENURE_BINS, labels=TENURE_LABELS).astype(str)
                out["paperless_billing"] = out["paperless_billing"].astype(int)
                return out
            """,
            "nbship:setup",
        ),
        code(
            """
            threshold = 0.5
            high_risk_threshold = 0.75
            """,
            "nbship:parameters",
        ),
        md("## A first look at the data"),
        code(
            """
            customers = pd.read_csv("data/customers.csv")
            print(customers.shape)
            customers.head()
            """
        ),
        code("customers.describe().round(2)"),
        code("customers.isna().sum()[lambda s: s > 0]"),
        md(
            """
            Four accounts have no `total_charges`: all of them are in their first two months (no bill yet).
            `add_features` fills them with `monthly_charges × tenure`.

            Churn by contract type and by internet service:
            """
        ),
        code(
            """
            by_contract = customers.groupby("contract")["churned"].agg(["mean", "count"])
            by_contract.round(3).sort_values("mean", ascending=False)
            """
        ),
        code(
            """
            customers.pivot_table(
                index="internet_service", columns="payment_method", values="churned", aggfunc="mean"
            ).round(2)
            """
        ),
        code(
            """
            features = add_features(customers)
            features.groupby("tenure_bucket", observed=True)["churned"].mean().reindex(TENURE_LABELS).round(3)
            """
        ),
        md("## Baselines, then the model"),
        code(
            """
            from sklearn.dummy import DummyClassifier
            from sklearn.metrics import roc_auc_score
            from sklearn.model_selection import train_test_split

            X_train, X_test, y_train, y_test = train_test_split(
                features[NUMERIC_FEATURES + CATEGORICAL_FEATURES],
                features["churned"],
                test_size=0.25,
                stratify=features["churned"],
                random_state=7,
            )
            baseline = DummyClassifier(strategy="prior").fit(X_train, y_train)
            print(f"churn rate (train): {y_train.mean():.3f}")
            print(f"baseline AUC: {roc_auc_score(y_test, baseline.predict_proba(X_test)[:, 1]):.3f}")
            """
        ),
        code(
            """
            %%time
            # scratch: does a forest beat a linear model here? (not kept)
            from sklearn.ensemble import RandomForestClassifier

            forest = RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=7)
            forest.fit(pd.get_dummies(X_train), y_train)
            forest_auc = roc_auc_score(y_test, forest.predict_proba(pd.get_dummies(X_test))[:, 1])
            """
        ),
        code(
            """
            import os

            import joblib

            churn_model = Pipeline(
                [
                    (
                        "columns",
                        ColumnTransformer(
                            [
                                ("numeric", StandardScaler(), NUMERIC_FEATURES),
                                ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
                            ]
                        ),
                    ),
                    ("classifier", LogisticRegression(C=0.5, max_iter=1000)),
                ]
            )
            churn_model.fit(X_train, y_train)
            test_auc = roc_auc_score(y_test, churn_model.predict_proba(X_test)[:, 1])
            print(f"random forest AUC: {forest_auc:.3f}")
            print(f"logistic regression AUC: {test_auc:.3f}")

            # within a point of the forest, a fraction of its size and explainable: refit on everything, keep it
            churn_model.fit(features[NUMERIC_FEATURES + CATEGORICAL_FEATURES], features["churned"])
            os.makedirs("artifacts", exist_ok=True)
            joblib.dump(churn_model, "artifacts/model.joblib")
            """
        ),
        code(
            """
            coefficients = pd.Series(
                churn_model.named_steps["classifier"].coef_[0],
                index=churn_model.named_steps["columns"].get_feature_names_out(),
            )
            coefficients.sort_values().round(3)
            """
        ),
        md("## Serving"),
        code(
            """
            import joblib

            model = joblib.load("artifacts/model.joblib")
            """,
            "nbship:load",
        ),
        code(
            """
            def preprocess(payload):
                \"\"\"One CRM record (a JSON object) -> a one-row feature frame.\"\"\"
                record = dict(payload)
                record.setdefault("total_charges", None)  # blank until the first bill
                missing = [column for column in RAW_COLUMNS if column not in record]
                if missing:
                    raise ValueError(f"missing fields: {', '.join(missing)}")
                return add_features(pd.DataFrame([record], columns=RAW_COLUMNS))
            """,
            "nbship:preprocess",
        ),
        code(
            """
            def predict(inputs):
                return model.predict_proba(inputs[NUMERIC_FEATURES + CATEGORICAL_FEATURES])[:, 1]
            """,
            "nbship:predict",
        ),
        code(
            """
            def postprocess(prediction):
                probability = float(prediction[0])
                if probability >= high_risk_threshold:
                    risk = "high"
                elif probability >= threshold:
                    risk = "medium"
                else:
                    risk = "low"
                return {
                    "churn_probability": round(probability, 6),
                    "will_churn": probability >= threshold,
                    "risk": risk,
                }
            """,
            "nbship:postprocess",
        ),
        code(
            """
            # nbship: example
            example = {
                "tenure_months": 4,
                "contract": "month-to-month",
                "internet_service": "fiber",
                "monthly_charges": 89.9,
                "total_charges": 352.4,
                "support_calls": 3,
                "paperless_billing": True,
                "payment_method": "electronic_check",
            }
            postprocess(predict(preprocess(example)))
            """
        ),
        md("A loyal two-year DSL customer, for contrast:"),
        code(
            """
            loyal = {
                "tenure_months": 60,
                "contract": "two-year",
                "internet_service": "dsl",
                "monthly_charges": 54.2,
                "support_calls": 0,
                "paperless_billing": False,
                "payment_method": "bank_transfer",
            }
            postprocess(predict(preprocess(loyal)))
            """
        ),
        code(
            """
            # call list for the retention team (one-off, not part of the service)
            scores = model.predict_proba(features[NUMERIC_FEATURES + CATEGORICAL_FEATURES])[:, 1]
            customers.assign(score=scores.round(3)).query("churned == 0").nlargest(5, "score")[
                ["customer_id", "contract", "tenure_months", "score"]
            ]
            """,
            "nbship:skip",
        ),
    ]


# --------------------------------------------------------------------------------------------------------------
# 2. text sentiment
# --------------------------------------------------------------------------------------------------------------

_POSITIVE = [
    "Absolutely love this kettle, boils fast and looks great on the counter.",
    "Great value for the price. Would buy again!",
    "The battery lasts all week, really impressed.",
    "Fast delivery and the quality is excellent.",
    "Comfortable, well made and exactly as described.",
    "Best headphones I have owned, the sound is fantastic.",
    "Works perfectly, setup took two minutes.",
    "My kids love it. Sturdy and fun.",
    "Excellent customer service, they replaced the part quickly.",
    "Beautiful design and very easy to use.",
    "Highly recommend, it does exactly what it promises.",
    "Super happy with this purchase <br/> five stars.",
    "The fabric is soft and the colour is lovely.",
    "Quiet, powerful and easy to clean. Love it.",
    "Arrived early and works like a charm.",
    "Fantastic little speaker, surprisingly loud and clear.",
    "Really good quality for the money, very pleased.",
    "Perfect fit and great support for running.",
    "I use it every day and it still works great.",
    "Simple, reliable and well designed. Recommended!",
    "Lovely product, the instructions were clear. Photos at https://example.org/p/123",
    "Exceeded my expectations, brilliant value.",
    "Smells amazing and lasts for hours.",
    "Great gift, my dad was delighted.",
    "Solid build, the screen is bright and sharp.",
    "Easy to assemble and looks fantastic in the living room.",
    "Excellent, fast charging and it never overheats.",
    "The coffee tastes great and the machine is easy to clean.",
    "Good quality, comfortable and stylish.",
    "Wonderful book, could not put it down.",
    "Happy with it, works as advertised.",
    "Great seller, well packed and quick shipping.",
    "Very comfortable shoes, I walked all day without pain.",
    "Love the colours, and the quality is top notch.",
    "Does the job perfectly and is very quiet.",
    "Brilliant! Exactly what I needed.",
]
_NEGATIVE = [
    "Stopped working after two days, very disappointed.",
    "Cheap plastic, broke the first time I used it.",
    "Terrible quality, the seams came apart in a week.",
    "Waste of money, does not work as described.",
    "The battery dies within an hour. Returning it.",
    "Arrived damaged and customer service never replied.",
    "Far too noisy and it smells of burning plastic.",
    "Uncomfortable and the size is completely wrong.",
    "Awful sound, crackles at any volume.",
    "Instructions are useless and parts were missing.",
    "Would not recommend, it leaks everywhere.",
    "Poor build quality, <b>avoid</b>.",
    "The screen scratched immediately, really poor.",
    "Took three weeks to arrive and then did not fit.",
    "Flimsy and overpriced, very disappointing.",
    "It overheats and shuts down constantly.",
    "The colour looks nothing like the photos. Returned.",
    "Broke after a month and the warranty process is a nightmare: http://example.com/complaint",
    "Worst purchase this year, do not buy.",
    "Hard to clean and the coffee tastes bitter.",
    "The app keeps crashing and it will not connect.",
    "Too small, badly made and the zip broke.",
    "Smells awful and gave me a headache.",
    "Not worth the price, feels cheap.",
    "Charger stopped working, now it is useless.",
    "The strap snapped on the first day.",
    "Boring book, I gave up halfway.",
    "Packaging was torn and the item was used.",
    "Very slow and keeps freezing, regret buying it.",
    "Loud, wobbly and the legs are uneven.",
    "Refund took ages and support was rude.",
    "Fell apart after one wash.",
    "Disappointed, the sound is muffled and weak.",
    "Does not hold a charge, total waste.",
    "Wrong item sent and no reply from the seller.",
    "Rough fabric, uncomfortable and it shrank.",
]


def _corpus_source() -> str:
    # interleaved, as the export from the review database comes: sorted by date, not by label
    rows = [row for pair in zip(_POSITIVE, _NEGATIVE, strict=True) for row in ((pair[0], 1), (pair[1], 0))]
    lines = ["# 72 reviews exported from the shop's review database, labelled by the support team (1 = positive)"]
    lines.append("reviews = [")
    lines += [f"    ({text!r}, {label})," for text, label in rows]
    lines.append("]")
    lines.append("texts = [text for text, _ in reviews]")
    lines.append("labels = [label for _, label in reviews]")
    lines.append("len(reviews)")
    return "\n".join(lines)


def sentiment_cells() -> list[Cell]:
    return [
        md(
            """
            # Review sentiment

            Product managers want every new review flagged as positive or negative as soon as it is posted, and
            reviews the model is unsure about sent to a human. Reviews come straight from the shop's web form, so
            they contain HTML fragments and links.
            """
        ),
        code(
            """
            import html
            import re

            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            URL_PATTERN = re.compile(r"https?://\\S+|www\\.\\S+")
            TAG_PATTERN = re.compile(r"<[^>]+>")
            SPACE_PATTERN = re.compile(r"\\s+")
            """,
            "nbship:setup",
        ),
        code(
            """
            # papermill parameters: reviews scoring between 1 - threshold and threshold go to a human
            threshold = 0.6
            max_chars = 500
            """,
            "parameters",
        ),
        md("## The labelled reviews"),
        code(_corpus_source()),
        code(
            """
            import pandas as pd

            corpus = pd.DataFrame({"text": texts, "label": labels})
            corpus["chars"] = corpus["text"].str.len()
            corpus.groupby("label")["chars"].describe().round(1)
            """
        ),
        code('corpus[corpus["text"].str.contains("<|http")]'),
        md(
            """
            Some reviews carry HTML tags and links. `clean_text` strips them, unescapes entities, lower-cases and
            collapses whitespace; the same function cleans the training set and the requests.
            """
        ),
        code(
            """
            def clean_text(text):
                text = html.unescape(str(text))
                text = URL_PATTERN.sub(" ", text)
                text = TAG_PATTERN.sub(" ", text)
                return SPACE_PATTERN.sub(" ", text).strip().lower()[:max_chars]


            def preprocess(payload):
                \"\"\"A JSON object {"text": "..."} -> the cleaned text, as a one-item batch.\"\"\"
                text = payload["text"] if isinstance(payload, dict) else payload
                if not isinstance(text, str) or not text.strip():
                    raise ValueError("expected a non-empty string in 'text'")
                return [clean_text(text)]
            """,
            "nbship:preprocess",
        ),
        code(
            """
            for raw in ["Poor build quality, <b>avoid</b>.", "  Photos at https://example.org/p/123 &amp; MORE  "]:
                print(repr(raw), "->", repr(clean_text(raw)))
            """
        ),
        md("## Model: TF-IDF features, logistic regression. Words or characters?"),
        code(
            """
            from sklearn.model_selection import StratifiedKFold, cross_val_predict

            cleaned = [clean_text(text) for text in texts]
            folds = StratifiedKFold(n_splits=6, shuffle=True, random_state=0)
            vectorizers = {
                "words 1-2": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                "chars 2-5": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            }
            for name, vectorizer in vectorizers.items():
                pipeline = make_pipeline(vectorizer, LogisticRegression(C=10.0, max_iter=1000))
                scores = cross_val_predict(pipeline, cleaned, labels, cv=folds, method="predict_proba")[:, 1]
                corpus[name] = scores.round(3)
                unsure = ((scores > 1 - threshold) & (scores < threshold)).mean()
                accuracy = ((scores >= 0.5) == corpus["label"]).mean()
                print(f"{name}: accuracy {accuracy:.3f}, sent to a human {unsure:.1%}")
            """
        ),
        md(
            """
            Same accuracy on 72 reviews (more labels are the real fix), but character n-grams send fewer reviews to
            a human and cope with typos and word forms the training set never saw ("disapointed", "broken").
            We keep them. The reviews the model gets most wrong:
            """
        ),
        code(
            """
            errors = corpus.assign(error=(corpus["chars 2-5"] - corpus["label"]).abs())
            errors.nlargest(5, "error")[["text", "label", "chars 2-5"]]
            """
        ),
        code(
            """
            import joblib
            import os

            sentiment_model = make_pipeline(
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                LogisticRegression(C=10.0, max_iter=1000),
            )
            sentiment_model.fit(cleaned, labels)
            os.makedirs("artifacts", exist_ok=True)
            joblib.dump(sentiment_model, "artifacts/sentiment.joblib")

            ngram_weights = pd.Series(sentiment_model[-1].coef_[0], index=sentiment_model[0].get_feature_names_out())
            pd.concat([ngram_weights.nsmallest(8), ngram_weights.nlargest(8)]).round(2)
            """
        ),
        md("## Serving"),
        code(
            """
            import joblib

            classifier = joblib.load("artifacts/sentiment.joblib")
            """,
            "nbship:load",
        ),
        code(
            """
            # nbship: predict
            def predict(inputs):
                \"\"\"Cleaned texts -> probability that each one is positive.\"\"\"
                return classifier.predict_proba(inputs)[:, 1]
            """
        ),
        code(
            """
            def postprocess(prediction):
                positive = float(prediction[0])
                if positive >= threshold:
                    return {"label": "positive", "score": round(positive, 4)}
                if positive <= 1 - threshold:
                    return {"label": "negative", "score": round(1 - positive, 4)}
                return {"label": "uncertain", "score": round(max(positive, 1 - positive), 4)}
            """,
            "nbship:postprocess",
        ),
        code(
            """
            example = {
                "text": "Honestly the best kettle I have owned <br/> fast, quiet and easy to clean! Photos: https://example.org/r/42"
            }
            postprocess(predict(preprocess(example)))
            """,
            "nbship:example",
        ),
        code(
            """
            # a complaint, a neutral statement, and a typo the training set never saw
            for text in ["Broke after two days, waste of money.", "It arrived on Tuesday.", "So disapointed!"]:
                print(text, "->", postprocess(predict(preprocess({"text": text}))))
            """
        ),
        md(
            """
            Neutral statements still lean negative: the training set has no neutral reviews. Before the
            "uncertain" route can be trusted, the support team should label a few dozen of them.
            """
        ),
    ]


# --------------------------------------------------------------------------------------------------------------
# 3. embeddings on a GPU node
# --------------------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# the upstream encoder's vocabulary, by the topics its training data taught it (a word may belong to several)
_TOPICS: dict[str, list[str]] = {
    "audio": _words(
        "audio sound music bass loud headphones earbuds headset speaker soundbar subwoofer studio noise "
        "cancelling microphone listen wired"
    ),
    "ears": _words("headphones earbuds headset ear over buds noise cancelling"),
    "wireless": _words("wireless bluetooth cordless rechargeable charging case battery earbuds"),
    "kitchen": _words(
        "kitchen kettle cooking cook pan frying non stick scale teapot tea infuser glass boil espresso "
        "coffee grinder milk frother machine"
    ),
    "coffee": _words("coffee espresso grinder burr milk frother brew latte beans machine"),
    "outdoor": _words(
        "outdoor camping camp tent hiking hike trail running shoes sleeping bag down waterproof lightweight "
        "headlamp lumen bottle water insulated"
    ),
    "shelter": _words("tent sleeping bag camping person comfort"),
    "steel": _words("stainless steel insulated bottle kettle"),
    "office": _words(
        "office work home desk chair ergonomic lumbar support standing height adjustable keyboard mouse "
        "monitor inch 4k usb docking station calls"
    ),
    "furniture": _words("desk chair standing height adjustable ergonomic lumbar table"),
    "computer": _words("keyboard mouse monitor 4k screen usb docking station laptop"),
}


def write_encoder(folder: Path) -> str:
    """The platform team's encoder-v3 (a 32-d word-embedding table), as published; returns its sha256.

    It stands in for weights trained elsewhere: each word's vector is the sum of its topics' vectors plus its own
    noise, seeded, stored as float16. Written as a zip with a fixed timestamp (``np.savez`` stamps the current
    time) so the sha256 pinned in ``nbship.yaml`` is stable.
    """
    import numpy as np

    rng = np.random.default_rng(3)
    dim = 32
    topic_vectors = {topic: rng.standard_normal(dim) for topic in _TOPICS}
    vocabulary = sorted({word for words in _TOPICS.values() for word in words})
    rows = []
    for word in vocabulary:
        vector = sum(topic_vectors[t] for t, words in _TOPICS.items() if word in words) + 0.6 * rng.standard_normal(dim)
        rows.append(vector / np.linalg.norm(vector))
    arrays = {
        "vocabulary": np.array(vocabulary, dtype="<U16"),
        "vectors": np.array(rows).astype(np.float16),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            with archive.open(entry, "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    data = buffer.getvalue()
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "weights" / "encoder.npz").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def embeddings_yaml(sha256: str) -> str:
    return f"""\
# nbship.yaml — product search embeddings, served from the GPU pool
name: product-embeddings
version: 3.0.1
resources:
  requests:
    cpu: 500m
    memory: 512Mi
  limits:
    cpu: "2"
    memory: 1Gi
gpu:
  count: 1
autoscaling:
  min_replicas: 1
  max_replicas: 3
# the GPU cluster runs the Prometheus Operator (kube-prometheus-stack, release "prometheus")
monitoring:
  enabled: true
  labels:
    release: prometheus
slo:
  latency_p95_seconds: 0.25
# the encoder is published by the platform team; the pod downloads and verifies it at start-up
artifacts:
  - path: weights/encoder.npz
    uri: "{ENCODER_URI}"
    sha256: {sha256}
"""


_CATALOGUE = [
    ("sku-1001", "Wireless noise-cancelling over-ear headphones", "audio"),
    ("sku-1002", "True wireless earbuds with charging case", "audio"),
    ("sku-1003", "Portable Bluetooth speaker, waterproof", "audio"),
    ("sku-1004", "Wired studio monitor headphones", "audio"),
    ("sku-1005", "Soundbar with wireless subwoofer", "audio"),
    ("sku-2001", "Electric kettle 1.7 l, stainless steel", "kitchen"),
    ("sku-2002", "Espresso machine with milk frother", "kitchen"),
    ("sku-2003", "Burr coffee grinder, 40 settings", "kitchen"),
    ("sku-2004", "Non-stick frying pan 28 cm", "kitchen"),
    ("sku-2005", "Digital kitchen scale", "kitchen"),
    ("sku-2006", "Glass teapot with infuser", "kitchen"),
    ("sku-3001", "Two-person lightweight camping tent", "outdoor"),
    ("sku-3002", "Down sleeping bag, -5 °C comfort", "outdoor"),
    ("sku-3003", "Trail running shoes, waterproof", "outdoor"),
    ("sku-3004", "Insulated stainless steel water bottle", "outdoor"),
    ("sku-3005", "Headlamp, rechargeable, 400 lumen", "outdoor"),
    ("sku-4001", "Ergonomic office chair with lumbar support", "office"),
    ("sku-4002", "Height-adjustable standing desk", "office"),
    ("sku-4003", "Wireless keyboard and mouse set", "office"),
    ("sku-4004", "27-inch 4K monitor", "office"),
    ("sku-4005", "Noise-cancelling headset with microphone for calls", "office"),
    ("sku-4006", "USB-C docking station", "office"),
]


def _catalogue_source() -> str:
    lines = ["# this quarter's assortment (merchandising export), one dict per product", "products = ["]
    lines += [f"    {{'id': {i!r}, 'title': {t!r}, 'category': {c!r}}}," for i, t, c in _CATALOGUE]
    lines.append("]")
    lines += [
        "",
        "os.makedirs('artifacts', exist_ok=True)",
        "with open('artifacts/catalogue.json', 'w', encoding='utf-8') as out:",
        "    json.dump(products, out, indent=2, ensure_ascii=False)",
        "    out.write('\\n')",
        "pd.DataFrame(products)['category'].value_counts()",
    ]
    return "\n".join(lines)


def embeddings_cells() -> list[Cell]:
    return [
        md(
            """
            # Similar products

            Search wants "more like this" suggestions: given a free-text query (or a product title), return the
            most similar products of the current catalogue. We use the platform team's text encoder **encoder-v3**,
            a 32-dimensional word-embedding table trained on search sessions; a text's embedding is the mean of its
            words' vectors. The weights are published in the model store and `weights/encoder.npz` is the local
            copy we develop against. The service runs in the GPU pool with the other embedding services (see
            `nbship.yaml`); the code itself is plain numpy.
            """
        ),
        code(
            """
            import json
            import re

            import numpy as np

            TOKEN_PATTERN = re.compile(r"[a-z0-9]+")


            def tokenize(text):
                return TOKEN_PATTERN.findall(str(text).lower())


            def embed(texts, word_vectors, word_index):
                \"\"\"Texts -> unit vectors: the mean of the known words' vectors (zero when no word is known).\"\"\"
                out = np.zeros((len(texts), word_vectors.shape[1]), dtype=np.float32)
                for row, text in enumerate(texts):
                    known = [word_index[token] for token in tokenize(text) if token in word_index]
                    if known:
                        out[row] = word_vectors[known].mean(axis=0)
                norms = np.linalg.norm(out, axis=1, keepdims=True)
                return out / np.maximum(norms, 1e-12)
            """,
            "nbship:setup",
        ),
        code(
            """
            # nbship: parameters
            top_k = 3
            min_score = 0.3
            """
        ),
        md("## The encoder"),
        code(
            """
            import os

            print(f"{os.path.getsize('weights/encoder.npz') / 1024:.1f} KiB")
            with np.load("weights/encoder.npz") as npz:
                for key in npz.files:
                    print(key, npz[key].dtype, npz[key].shape)
                print(npz["vocabulary"][:12])
            """
        ),
        md("## The catalogue"),
        code("import pandas as pd\n\n" + _catalogue_source()),
        code(
            """
            # title words the encoder does not know are ignored: check that every title keeps a few
            with np.load("weights/encoder.npz") as npz:
                known_words = set(npz["vocabulary"].tolist())
            pd.DataFrame(
                {
                    "id": [p["id"] for p in products],
                    "unknown": [" ".join(t for t in tokenize(p["title"]) if t not in known_words) for p in products],
                }
            ).head(8)
            """
        ),
        md("## Serving: load the encoder and embed the catalogue once at start-up"),
        code(
            """
            with np.load("weights/encoder.npz") as weights:
                vocabulary = [str(word) for word in weights["vocabulary"]]
                word_vectors = weights["vectors"].astype(np.float32)
            word_index = {word: row for row, word in enumerate(vocabulary)}

            with open("artifacts/catalogue.json", encoding="utf-8") as fh:
                catalogue = json.load(fh)
            catalogue_vectors = embed([item["title"] for item in catalogue], word_vectors, word_index)
            """,
            "nbship:load",
        ),
        code(
            """
            # do similar titles land close together?
            ids = [item["id"] for item in catalogue]
            similarity = pd.DataFrame(catalogue_vectors @ catalogue_vectors.T, index=ids, columns=ids)
            similarity.loc[
                ["sku-1001", "sku-2002", "sku-3001", "sku-4002"], ["sku-1002", "sku-2003", "sku-3002", "sku-4001"]
            ].round(2)
            """
        ),
        code('%timeit embed(["wireless noise cancelling headphones"], word_vectors, word_index)'),
        code(
            """
            def preprocess(payload):
                \"\"\"{"query": "...", "k": 5} -> the query text and how many neighbours to return.\"\"\"
                query = str(payload.get("query", "")).strip()
                if not query:
                    raise ValueError("expected a non-empty 'query'")
                k = int(payload.get("k", top_k))
                return {"query": query, "k": max(1, min(k, len(catalogue)))}
            """,
            "nbship:preprocess",
        ),
        code(
            """
            def predict(inputs):
                query_vector = embed([inputs["query"]], word_vectors, word_index)[0]
                scores = catalogue_vectors @ query_vector
                order = np.argsort(-scores, kind="stable")[: inputs["k"]]
                return [(int(i), float(scores[i])) for i in order]
            """,
            "nbship:predict",
        ),
        code(
            """
            # nbship: postprocess
            def postprocess(prediction):
                matches = [
                    {"id": catalogue[i]["id"], "title": catalogue[i]["title"], "score": round(score, 4)}
                    for i, score in prediction
                    if score >= min_score
                ]
                return {"matches": matches}
            """
        ),
        code(
            """
            example = {"query": "noise cancelling wireless headphones", "k": 3}
            postprocess(predict(preprocess(example)))
            """,
            "nbship:example",
        ),
        code(
            """
            for query in ["coffee machine", "tent for hiking", "desk for the home office", "birthday present"]:
                matches = postprocess(predict(preprocess({"query": query})))["matches"]
                print(f"{query!r:28} ->", [m["id"] for m in matches])
            """
        ),
    ]


# --------------------------------------------------------------------------------------------------------------
# build and execute
# --------------------------------------------------------------------------------------------------------------


def build_notebook(slug: str, cells: list[Cell]) -> Any:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()  # type: ignore[no-untyped-call]
    for i, spec in enumerate(cells, start=1):
        cell_id = f"{slug}-{i:02d}"  # stable ids: nbformat's default ids are random
        if spec["kind"] == "markdown":
            nb.cells.append(new_markdown_cell(spec["source"], id=cell_id))  # type: ignore[no-untyped-call]
        else:
            metadata = {"tags": spec["tags"]} if spec["tags"] else {}
            nb.cells.append(new_code_cell(spec["source"], id=cell_id, metadata=metadata))  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.validate(nb)
    return nb


def execute(nb: Any, folder: Path) -> Any:
    from nbclient import NotebookClient

    # fixed hash seed and one BLAS thread: pickles (sets, dicts) and float sums come out identical on every run
    os.environ["PYTHONHASHSEED"] = "0"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(_TIMING_MAGICS):
            cell.outputs = []
        cell.outputs = _coalesce_streams(cell.outputs)
    info = nb.metadata.get("language_info", {})
    nb.metadata["language_info"] = {
        "name": "python",
        "version": info.get("version", "3.11"),
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "nbconvert_exporter": "python",
    }
    return nb


def _coalesce_streams(outputs: list[Any]) -> list[Any]:
    """Merge adjacent stdout/stderr chunks, whose split depends on flush timing (as nbconvert's coalesce_streams)."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output.output_type == "stream"
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def save(nb: Any, path: Path) -> None:
    import nbformat

    nbformat.validate(nb)
    text: str = nbformat.writes(nb)  # type: ignore[no-untyped-call]
    path.write_text(text + "\n", encoding="utf-8")


def make_churn() -> Path:
    folder = HERE / "tabular-churn"
    folder.mkdir(parents=True, exist_ok=True)
    write_customers_csv(folder)
    (folder / "nbship.yaml").write_text(CHURN_YAML, encoding="utf-8")
    path = folder / "churn.ipynb"
    save(execute(build_notebook("churn", churn_cells()), folder), path)
    return path


def make_sentiment() -> Path:
    folder = HERE / "text-sentiment"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sentiment.ipynb"
    save(execute(build_notebook("sentiment", sentiment_cells()), folder), path)
    return path


def make_embeddings() -> Path:
    folder = HERE / "gpu-embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    sha256 = write_encoder(folder)
    (folder / "nbship.yaml").write_text(embeddings_yaml(sha256), encoding="utf-8")
    path = folder / "embeddings.ipynb"
    save(execute(build_notebook("embeddings", embeddings_cells()), folder), path)
    return path


MAKERS: dict[str, Callable[[], Path]] = {
    "churn": make_churn,
    "sentiment": make_sentiment,
    "embeddings": make_embeddings,
}


def main(argv: list[str]) -> int:
    names = argv or list(MAKERS)
    unknown = [n for n in names if n not in MAKERS]
    if unknown:
        print(f"unknown example(s): {', '.join(unknown)}; choose from {', '.join(MAKERS)}", file=sys.stderr)
        return 2
    for name in names:
        path = MAKERS[name]()
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
