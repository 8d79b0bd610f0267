#!/usr/bin/env python3
"""Leadscore's learned scorecard against pip-installable peers, on the same cross-validation folds.

    pip install lightgbm scikit-learn pandas
    cargo build --release -p leadscore
    python3 bench/peers.py --leads Leads.csv --label Converted --na-values Select \
        --exclude "Tags,Lead Quality,..."

Runs `leadscore train --json --predictions F` (its out-of-fold probabilities and fold of every
row), rebuilds the same fold assignment here (see `fold_ids`, identical to
crates/learn/src/train/folds.rs) and checks it matches, then fits LightGBM with default settings
and a one-hot + standardised logistic regression on the same columns (the ones Leadscore used) and
the same folds. Prints a markdown table of mean ± sd ROC AUC and log-loss over the folds, and the
training time: for every learner, 5 cross-validation fits plus one fit on all rows (for Leadscore,
the whole `leadscore train` run: reading the file, binning, λ selection, CV and writing the model).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

MASK = (1 << 64) - 1


def fold_ids(labels, k, seed):
    """Stratified folds: the rows of each class (negatives first, then positives), in input order,
    shuffled by Fisher-Yates with one 64-bit LCG (Knuth's MMIX constants, value = state >> 33),
    the i-th row of each class to fold i mod k."""
    state = seed & MASK
    folds = [0] * len(labels)
    for cls in (False, True):
        rows = [i for i, y in enumerate(labels) if bool(y) == cls]
        for i in range(len(rows) - 1, 0, -1):
            state = (state * 6364136223846793005 + 1442695040888963407) & MASK
            j = (state >> 33) % (i + 1)
            rows[i], rows[j] = rows[j], rows[i]
        for position, row in enumerate(rows):
            folds[row] = position % k
    return folds


def parse_label(value):
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "t", "1.0"):
        return True
    if text in ("0", "false", "no", "n", "f", "0.0"):
        return False
    return None


def auc_logloss(y, p):
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return roc_auc_score(y, p), log_loss(y, p, labels=[0, 1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--exclude", default="")
    ap.add_argument("--na-values", default="")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--leadscore", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "leadscore"))
    args = ap.parse_args()

    import lightgbm as lgb
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    na = [v for v in args.na_values.split(",") if v]
    # Like Leadscore: only empty cells and the given values are missing.
    df = pd.read_csv(args.leads, dtype=str, keep_default_na=False)
    df = df.apply(lambda c: c.str.strip())
    labels = df[args.label].map(parse_label)
    df = df[labels.notna()].reset_index(drop=True)
    y = labels[labels.notna()].astype(bool).to_numpy()
    folds = np.array(fold_ids(list(y), args.folds, args.seed))

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.toml")
        predictions = os.path.join(tmp, "predictions.csv")
        command = [args.leadscore, "train", "--leads", args.leads, "--label", args.label, "--out", model,
                   "--folds", str(args.folds), "--seed", str(args.seed), "--predictions", predictions, "--json"]
        if args.exclude:
            command += ["--exclude", args.exclude]
        if args.na_values:
            command += ["--na-values", args.na_values]
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        leadscore_seconds = time.perf_counter() - started
        if run.returncode != 0:
            sys.exit(f"leadscore train failed:\n{run.stderr}")
        summary = json.loads(run.stdout)
        oof = pd.read_csv(predictions)
    if not (oof["fold"].to_numpy() == folds).all() or not (oof["label"].to_numpy() == y.astype(int)).all():
        sys.exit("fold assignment differs between leadscore and peers.py")
    columns = summary["columns"]

    X = df[columns].replace({v: "" for v in na}).replace("", np.nan)
    numeric, categorical = [], []
    for c in columns:
        converted = pd.to_numeric(X[c], errors="coerce")
        if converted.notna().sum() == X[c].notna().sum():
            X[c] = converted
            numeric.append(c)
        else:
            categorical.append(c)

    def lightgbm():
        Xl = X.copy()
        for c in categorical:
            Xl[c] = Xl[c].astype("category")
        return Xl, lambda: lgb.LGBMClassifier(verbose=-1)

    def logistic():
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                  OneHotEncoder(handle_unknown="ignore")), categorical),
        ])
        return X, lambda: make_pipeline(pre, LogisticRegression(max_iter=5000))

    rows = []
    ls_auc, ls_ll = [], []
    for f in range(args.folds):
        test = folds == f
        a, l = auc_logloss(y[test], oof["probability"].to_numpy()[test])
        ls_auc.append(a)
        ls_ll.append(l)
    rows.append(("Leadscore scorecard (readable rules)", ls_auc, ls_ll, leadscore_seconds))
    for name, make in (("LightGBM 4 defaults", lightgbm), ("logistic regression (one-hot + standardised)", logistic)):
        data, model_of = make()
        aucs, losses = [], []
        started = time.perf_counter()
        for f in range(args.folds):
            train, test = folds != f, folds == f
            m = model_of().fit(data[train], y[train])
            a, l = auc_logloss(y[test], m.predict_proba(data[test])[:, 1])
            aucs.append(a)
            losses.append(l)
        model_of().fit(data, y)
        rows.append((name, aucs, losses, time.perf_counter() - started))

    print(f"{len(y)} rows, {y.mean():.1%} positive, {len(columns)} columns "
          f"({len(numeric)} numeric, {len(categorical)} categorical); {args.folds}-fold stratified CV, seed {args.seed}, "
          f"same folds for every learner\n")
    print("| learner | ROC AUC | log-loss | train time (CV + final fit) |")
    print("|---|---|---|---|")
    for name, aucs, losses, seconds in rows:
        print(f"| {name} | {np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f} | "
              f"{np.mean(losses):.3f} ± {np.std(losses, ddof=1):.3f} | {seconds:.2f} s |")
    print(f"\nLeadscore's own figures: AUC {summary['cv']['auc_mean']:.3f}, log-loss "
          f"{summary['cv']['log_loss_mean']:.3f}, in-process training {summary['train_seconds']:.2f} s")


if __name__ == "__main__":
    main()
