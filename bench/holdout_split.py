#!/usr/bin/env python3
"""The independent check of issue 3, rehearsed: split a labelled leads CSV into train/test, run
`leadscore train --leads train.csv --label COL --out m.toml` and `leadscore score --model m.toml
--leads test.csv --format csv` with default settings, and compare the `probability` column's ROC AUC
with LightGBM (defaults, categorical columns as categories) and a one-hot + standardised logistic
regression fitted on the same split.

    pip install lightgbm scikit-learn pandas
    cargo build --release -p leadscore
    python3 bench/holdout_split.py --data ../shared/data/x-education-leads/Leads.csv --label Converted \
        --drop "Tags,Lead Quality,Lead Profile,Last Notable Activity,Asymmetrique Activity Index,Asymmetrique Profile Index,Asymmetrique Activity Score,Asymmetrique Profile Score"
"""

import argparse
import io
import os
import subprocess
import tempfile

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "leadscore")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--drop", default="", help="comma-separated columns to remove before splitting (leaky ones)")
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--seeds", default="7,11,23")
    a = ap.parse_args()
    df = pd.read_csv(a.data, sep=None, engine="python")
    df = df.drop(columns=[c for c in a.drop.split(",") if c])
    y_all = df[a.label].astype(str).str.strip().str.lower().isin(["1", "1.0", "true", "yes", "y", "t"]).astype(int)
    features = [c for c in df.columns if c != a.label and df[c].nunique() < 0.9 * len(df)]
    cat = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
    num = [c for c in features if c not in cat]
    dtypes = {c: pd.CategoricalDtype(df[c].dropna().unique()) for c in cat}
    print("| split seed | Leadscore (train + score, defaults) | LightGBM defaults | logistic regression |")
    print("|---|---|---|---|")
    for seed in [int(s) for s in a.seeds.split(",")]:
        order = np.random.default_rng(seed).permutation(len(df))
        cut = int((1 - a.test_share) * len(df))
        train, test = df.iloc[order[:cut]], df.iloc[order[cut:]]
        y_train, y_test = y_all.iloc[order[:cut]], y_all.iloc[order[cut:]]
        with tempfile.TemporaryDirectory() as tmp:
            train_csv, test_csv, model = (os.path.join(tmp, n) for n in ("train.csv", "test.csv", "m.toml"))
            train.to_csv(train_csv, index=False)
            test.to_csv(test_csv, index=False)
            subprocess.run([BIN, "train", "--leads", train_csv, "--label", a.label, "--out", model], check=True, capture_output=True)
            out = subprocess.run([BIN, "score", "--model", model, "--leads", test_csv, "--format", "csv"],
                                 check=True, capture_output=True, text=True).stdout
        leadscore = roc_auc_score(y_test, pd.read_csv(io.StringIO(out))["probability"])
        gbm = lgb.LGBMClassifier(verbose=-1).fit(train[features].astype(dtypes), y_train)
        lightgbm = roc_auc_score(y_test, gbm.predict_proba(test[features].astype(dtypes))[:, 1])
        prep = ColumnTransformer([
            ("c", make_pipeline(SimpleImputer(strategy="constant", fill_value="NA"), OneHotEncoder(handle_unknown="ignore")), cat),
            ("n", make_pipeline(SimpleImputer(), StandardScaler()), num),
        ])
        lr = make_pipeline(prep, LogisticRegression(max_iter=3000)).fit(train[features], y_train)
        logistic = roc_auc_score(y_test, lr.predict_proba(test[features])[:, 1])
        print(f"| {seed} | {leadscore:.4f} | {lightgbm:.4f} | {logistic:.4f} |")


if __name__ == "__main__":
    main()
