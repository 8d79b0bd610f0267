#!/usr/bin/env python3
"""Behaviour features against the peers: `leadscore gen` data (traits plus event counts), the same
table and the same cross-validation folds for every learner.

`leadscore train --outcomes ... --events ...` learns from the leads' traits and the counts of each
frequent event name and page family in the 90 and 7 days before each lead's cutoff. It writes the
table it learned from (`--features`) and its own out-of-fold probabilities with their folds
(`--predictions`); LightGBM and EBM are then cross-validated on that table with the same folds, so
the figures compare the learners, not the feature engineering. Name and e-mail columns are left
out for every learner (Leadscore skips them itself).

    pip install interpret-core lightgbm scikit-learn pandas
    cargo build --release -p leadscore
    python3 bench/learn_behaviour_peers.py --seed 1                    # LightGBM only (seconds)
    python3 bench/learn_behaviour_peers.py --seed 1 --peers lgbm,ebm   # EBM: ~15 min on 2 cores
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "..", "target", "release", "leadscore")
END = "2024-06-30T00:00:00Z"


def per_fold(y, p, folds):
    ks = sorted(set(folds))
    aucs = [roc_auc_score(y[folds == k], p[folds == k]) for k in ks]
    lls = [log_loss(y[folds == k], np.clip(p[folds == k], 1e-15, 1 - 1e-15)) for k in ks]
    return np.mean(aucs), np.mean(lls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1, help="seed of `leadscore gen`")
    ap.add_argument("--peers", default="lgbm", help="comma-separated: lgbm, ebm")
    ap.add_argument("--algorithms", default="default,logistic")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "gen")
        subprocess.run([BIN, "gen", "--leads", str(args.leads), "--seed", str(args.seed), "--end", END,
                        "--out", data], check=True, capture_output=True)
        rows = []
        table = folds = None
        for algorithm in args.algorithms.split(","):
            features, predictions = os.path.join(tmp, "features.csv"), os.path.join(tmp, f"{algorithm}.csv")
            cmd = [BIN, "train", "--leads", f"{data}/leads.csv", "--outcomes", f"{data}/outcomes.csv",
                   "--events", f"{data}/events.jsonl", "--as-of", END, "--out", os.path.join(tmp, "m.toml"),
                   "--features", features, "--predictions", predictions, "--json"]
            if algorithm != "default":
                cmd += ["--algorithm", algorithm]
            started = time.time()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            seconds = time.time() - started
            summary = json.loads(out.stdout)
            pred = pd.read_csv(predictions)
            folds = pred["fold"].values
            y = pred["label"].values
            auc, ll = per_fold(y, pred["probability"].values, folds)
            rows.append((f"Leadscore `train` {'' if algorithm == 'default' else '--algorithm ' + algorithm}".strip(),
                         auc, ll, seconds, summary["cv"]["auc_mean"]))
            table = pd.read_csv(features, keep_default_na=False, na_values=[""])
        y = table["label"].values
        X = table.drop(columns=[c for c in ["lead_id", "label", "email", "first_name", "last_name"] if c in table])
        for c in X.columns:
            if X[c].dtype.kind not in "biuf":
                X[c] = X[c].astype("category")

        def cross_validate(name, fit_predict):
            p = np.zeros(len(y))
            started = time.time()
            for k in sorted(set(folds)):
                train, test = folds != k, folds == k
                p[test] = fit_predict(X[train], y[train], X[test])
            auc, ll = per_fold(y, p, folds)
            rows.append((name, auc, ll, time.time() - started, None))

        peers = args.peers.split(",")
        if "lgbm" in peers:
            import lightgbm as lgb
            cross_validate("LightGBM (defaults)",
                           lambda a, b, c: lgb.LGBMClassifier(verbose=-1).fit(a, b).predict_proba(c)[:, 1])
        if "ebm" in peers:
            from interpret.glassbox import ExplainableBoostingClassifier
            cross_validate("EBM (defaults)", lambda a, b, c: ExplainableBoostingClassifier(random_state=args.seed)
                           .fit(a, b).predict_proba(c)[:, 1])
        print(f"### gen --leads {args.leads} --seed {args.seed}: {len(y)} decided leads ({y.mean():.3f} converted), "
              f"{X.shape[1]} columns, {len(set(folds))} folds\n")
        print("| learner | CV ROC AUC | CV log-loss | seconds (all folds) |")
        print("|---|---|---|---|")
        for name, auc, ll, seconds, _ in rows:
            print(f"| {name} | {auc:.4f} | {ll:.4f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
