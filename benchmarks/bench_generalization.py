"""Acceptance numbers of the generalization layer (docs/generalization.md §5).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_generalization.py [--section NAME ...]
        [--seeds R] [--widths 256 1024 4096] [--out benchmarks/bench_generalization.json]

Sections (all by default):

* ``grid``: K = 2 mixture (default_mixture, p = 512, n_train = n_test = 1024), predicted
  vs observed random-feature ridge test MSE over ridge x width, for the DEQ and the
  designed network, from the exact kernel and from the statistics (surrogate); a point
  passes when |predicted - observed| <= max(5% of observed, 2 standard errors);
* ``accuracy``: DEQ-feature vs designed-network-feature test accuracy over seeds, relu
  and tanh at sa = 0.2 and 0.5, on the mixture, on digits 0 vs 1 and on all ten digits,
  at the ridge that minimises the *predicted* kernel-ridge test MSE of the CK surrogate
  over the grid (chosen from the statistics, without training), with the gap predicted
  from each network's exact kernels and from the statistics;
* ``hidden``: the same comparison for relu (whose design, lrelu2, has two layers) with the
  designed network's hidden layer hidden_ratio x m wide (``--hidden-ratios``), beside the
  two-layer equivalent's prediction at that width;
* ``conditional``: the grid's two-layer design predicted given its hidden layer (the
  deterministic equivalent of the last layer's kernel on drawn H_1, averaged over
  ``--hidden-draws`` draws) against the grid's observed enn_rf (reads section grid);
* ``kernels``: on the digits, ||G_sampled - G~|| / ||G_sampled|| and the spectral KS
  distance between them, beside a Gaussian mixture with the digits' plug-in class means
  and covariances at the same n, p;
* ``ratio``: test MSE against n_train/p (p = 256) predicted and observed;
* ``steps``: the derivation's steps one by one on DEQ features (p = 256, n = 512,
  m = 256): E[Z^T Z] against the exact CK, (1/n) tr E[Q] against (1/n) tr Qbar, and the
  train and test MSE, each with its Monte-Carlo standard error.

Timings (prediction vs observation) are in every section's records.  Writes one JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rmt_deq._io import json_ready  # noqa: E402
from rmt_deq.data.labelled import load_labelled_data  # noqa: E402
from rmt_deq.data.mixture import GaussianMixture, default_mixture  # noqa: E402
from rmt_deq.data.statistics import plugin_statistics  # noqa: E402
from rmt_deq.fixed_point.four_equations import solve_four_equations  # noqa: E402
from rmt_deq.generalization.curves import ratio_curves  # noqa: E402
from rmt_deq.generalization.equivalent import rf_ridge_equivalent  # noqa: E402
from rmt_deq.design.solve import design_for_deq  # noqa: E402
from rmt_deq.generalization.experiment import generalization_experiment, predict  # noqa: E402
from rmt_deq.moments.pairs import PairExpectations  # noqa: E402
from rmt_deq.generalization.features import (deq_features, exact_problem_kernels,  # noqa: E402
                                             problem_solution)
from rmt_deq.generalization.ridge import ridge_scores  # noqa: E402
from rmt_deq.generalization.problem import data_problem, mixture_problem  # noqa: E402
from rmt_deq.generalization.ridge import RIDGE_GRID  # noqa: E402
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate, plugin_ck_surrogate  # noqa: E402
from rmt_deq.kernels.exact import exact_ck  # noqa: E402
from rmt_deq.metrics import relative_operator_distance, spectral_distances  # noqa: E402
from rmt_deq.sampling.deq import sampled_ck  # noqa: E402

SECTIONS = ("grid", "accuracy", "hidden", "conditional", "kernels", "ratio", "steps")


def _passes(pred: float, obs: float, se: float) -> bool:
    return abs(pred - obs) <= max(0.05 * abs(obs), 2.0 * se)


def section_grid(args: argparse.Namespace) -> dict:
    out = {}
    mix = default_mixture(512, 2)
    prob = mixture_problem(mix, 1024, 1024, rng=0)
    for act in args.activations:
        t0 = time.perf_counter()
        res = generalization_experiment(prob, act, 0.2, widths=tuple(args.widths),
                                        ridges=RIDGE_GRID, seeds=args.seeds,
                                        methods=("deq_rf", "enn_rf"))
        rows = []
        for o in res.observed:
            row = {"method": o.method, "width": o.width, "ridge": o.ridge,
                   "observed": o.test_mse, "observed_se": o.test_mse_se,
                   "observed_accuracy": o.test_accuracy,
                   "observed_accuracy_se": o.test_accuracy_se}
            for src in ("exact", "surrogate"):
                p = res.predicted_for(o.method, o.ridge, o.width, src)
                row[f"predicted_{src}"] = p.test_mse
                row[f"predicted_{src}_accuracy"] = p.test_accuracy
                row[f"relative_error_{src}"] = (p.test_mse - o.test_mse) / o.test_mse
                row[f"pass_{src}"] = _passes(p.test_mse, o.test_mse, o.test_mse_se)
            rows.append(row)
        out[act] = {"problem": dict(res.problem), "rows": rows, "timing": dict(res.timing),
                    "wall_s": time.perf_counter() - t0, "design": dict(res.design)}
        print(f"grid {act}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def _problems(args: argparse.Namespace) -> dict:
    probs = {"mixture": mixture_problem(default_mixture(512, 2), 1024, 1024, rng=0)}
    try:
        probs["digits_0v1"] = data_problem(load_labelled_data("digits", classes=(0, 1)),
                                           0.5, rng=0)
        probs["digits_all"] = data_problem(load_labelled_data("digits"), 0.5, rng=0)
    except ImportError:
        print("scikit-learn missing: digits skipped", file=sys.stderr)
    return probs


def section_conditional(args: argparse.Namespace) -> dict:
    """The grid's two-layer designed network (relu -> lrelu2) predicted *given its hidden
    layer*: for each of ``--hidden-draws`` draws of W_1 (width m), the kernel of the last
    layer on the drawn H_1, K_2(H_1) = E_w[sigma_2(w.h_i) sigma_2(w.h_j)] (centred; a
    bivariate Gaussian expectation at covariance H_1^T H_1), goes into the same
    deterministic equivalent at width m; the mean over draws is set against the grid's
    observed enn_rf test MSE (section grid: same problem, widths and ridges).  A check of
    the explanation that the equal-width gap is the hidden layer's fluctuation: no ridge is
    fitted, but W_1 is sampled."""
    grid = _load_section(args, "grid")
    mix = default_mixture(512, 2)
    prob = mixture_problem(mix, 1024, 1024, rng=0)
    design = design_for_deq("relu", 0.2, prob.tau0, family="lrelu2", target="ck")
    acts, cent = design.network.activations, design.centrings
    if len(acts) != 2:
        raise SystemExit("section conditional needs the two-layer lrelu2 design")
    X = np.asarray(prob.X)
    rows = []
    t0 = time.perf_counter()
    for m in args.widths:
        preds = []
        for d in range(args.hidden_draws):
            rng = np.random.default_rng(np.random.SeedSequence([11, m, d]))
            pre = rng.standard_normal((m, X.shape[0])) @ X
            H1 = (np.asarray(acts[0].fn(pre)) - cent[0]) / math.sqrt(m)
            G1 = H1.T @ H1
            K2 = PairExpectations(acts[1], np.diagonal(G1).copy(), cent[1]).evaluate(G1)[0]
            preds.append([q.test_mse for q in predict(prob, K2, "enn_rf", "exact", m,
                                                      RIDGE_GRID)])
        preds = np.asarray(preds)
        for j, lam in enumerate(RIDGE_GRID):
            obs = next(r for r in grid["relu"]["rows"] if r["method"] == "enn_rf"
                       and int(r["width"]) == m and r["ridge"] == lam)
            mean = float(preds[:, j].mean())
            se = float(preds[:, j].std(ddof=1) / math.sqrt(len(preds)))
            rows.append({"width": m, "ridge": lam, "observed": obs["observed"],
                         "observed_se": obs["observed_se"], "conditional": mean,
                         "conditional_se": se,
                         "unconditional": obs["predicted_exact"],
                         "relative_error": (mean - obs["observed"]) / obs["observed"],
                         "pass": _passes(mean, obs["observed"],
                                         math.hypot(obs["observed_se"], se))})
        print(f"conditional m = {m}: {time.perf_counter() - t0:.0f} s", file=sys.stderr,
              flush=True)
    return {"hidden_draws": args.hidden_draws, "rows": rows,
            "passes": sum(r["pass"] for r in rows), "points": len(rows),
            "wall_s": time.perf_counter() - t0}


def _load_section(args: argparse.Namespace, name: str) -> dict:
    if os.path.exists(args.out):
        with open(args.out) as fh:
            data = json.load(fh)
        if name in data:
            return data[name]
    raise SystemExit(f"run --section {name} first (it is read from {args.out})")


def _ridge_rule(prob, act: str, sa: float, width: int) -> float:
    """The ridge that minimises the CK surrogate's predicted kernel-ridge test MSE over the
    grid (from the statistics, no training)."""
    pre = generalization_experiment(prob, act, sa, widths=(width,), ridges=RIDGE_GRID,
                                    seeds=2, methods=("ck_kernel",), sources=("surrogate",))
    return min(pre.predicted, key=lambda p: p.test_mse).ridge


def _in_se(gap: float, se: float) -> float:
    """gap / se; 0 when both vanish (e.g. every seed 100% accurate)."""
    return gap / se if se > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))


def section_hidden(args: argparse.Namespace) -> dict:
    """DEQ vs designed-network features when the designed network's hidden layer is wider
    than its features (hidden_ratio x m): relu's design has two layers (lrelu2)."""
    out = {}
    for name, prob in _problems(args).items():
        for sa in (0.2, 0.5):
            lam = _ridge_rule(prob, "relu", sa, args.accuracy_width)
            deq = generalization_experiment(prob, "relu", sa, widths=(args.accuracy_width,),
                                            ridges=(lam,), seeds=args.seeds,
                                            methods=("deq_rf",), sources=("surrogate",))
            d = deq.observed_for("deq_rf", lam, args.accuracy_width)
            pred = deq.predicted_for("deq_rf", lam, args.accuracy_width, "surrogate")
            rows = []
            for ratio in args.hidden_ratios:
                t0 = time.perf_counter()
                res = generalization_experiment(
                    prob, "relu", sa, widths=(args.accuracy_width,), ridges=(lam,),
                    seeds=args.seeds, methods=("enn_rf",), sources=("surrogate",),
                    hidden_ratio=ratio)
                e = res.observed_for("enn_rf", lam, args.accuracy_width)
                ep = res.predicted_for("enn_rf", lam, args.accuracy_width, "surrogate")
                se = math.hypot(d.test_accuracy_se, e.test_accuracy_se)
                rows.append({"hidden_ratio": ratio, "enn_accuracy": e.test_accuracy,
                             "enn_accuracy_se": e.test_accuracy_se,
                             "enn_test_mse": e.test_mse, "enn_test_mse_se": e.test_mse_se,
                             "accuracy_gap": d.test_accuracy - e.test_accuracy,
                             "gap_se": se,
                             "gap_in_se": _in_se(d.test_accuracy - e.test_accuracy, se),
                             "enn_mse_vs_prediction": e.test_mse / pred.test_mse - 1,
                             # the two-layer equivalent at this hidden width (statistics)
                             "enn_predicted_test_mse": ep.test_mse,
                             "enn_predicted_accuracy": ep.test_accuracy,
                             "predicted_accuracy_gap": pred.test_accuracy - ep.test_accuracy,
                             "wall_s": time.perf_counter() - t0})
            out[f"{name}/relu/sa={sa}"] = {
                "ridge": lam, "width": args.accuracy_width, "seeds": args.seeds,
                "deq_accuracy": d.test_accuracy, "deq_accuracy_se": d.test_accuracy_se,
                "deq_test_mse": d.test_mse, "deq_test_mse_se": d.test_mse_se,
                "predicted_test_mse": pred.test_mse, "rows": rows}
            print(f"hidden {name} relu {sa}", file=sys.stderr, flush=True)
    return out


def section_accuracy(args: argparse.Namespace) -> dict:
    out = {}
    for name, prob in _problems(args).items():
        for act in args.activations:
            for sa in (0.2, 0.5):
                t0 = time.perf_counter()
                lam = _ridge_rule(prob, act, sa, args.accuracy_width)
                res = generalization_experiment(prob, act, sa, widths=(args.accuracy_width,),
                                                ridges=(lam,), seeds=args.seeds)
                rec = {"ridge": lam, "width": args.accuracy_width, "timing": dict(res.timing)}
                for meth in ("deq_rf", "enn_rf", "ck_kernel", "ntk_kernel"):
                    o = res.observed_for(meth, lam, args.accuracy_width)
                    p = res.predicted_for(meth, lam, args.accuracy_width, "surrogate")
                    rec[meth] = {"observed_accuracy": o.test_accuracy,
                                 "observed_accuracy_se": o.test_accuracy_se,
                                 "observed_test_mse": o.test_mse,
                                 "observed_test_mse_se": o.test_mse_se,
                                 "predicted_accuracy": p.test_accuracy,
                                 "predicted_test_mse": p.test_mse}
                    if meth.endswith("_rf"):    # kernel ridge with the exact kernel is exact
                        x = res.predicted_for(meth, lam, args.accuracy_width, "exact")
                        rec[meth].update(predicted_exact_accuracy=x.test_accuracy,
                                         predicted_exact_test_mse=x.test_mse)
                d, e = rec["deq_rf"], rec["enn_rf"]
                se = math.hypot(d["observed_accuracy_se"], e["observed_accuracy_se"])
                rec["accuracy_gap"] = d["observed_accuracy"] - e["observed_accuracy"]
                rec["gap_se"] = se
                rec["within_one_se"] = abs(rec["accuracy_gap"]) <= se
                # the gap the two exact kernels predict (each network's own infinite-width
                # CK: equal surrogates, not equal kernels at finite p)
                rec["predicted_exact_accuracy_gap"] = (d["predicted_exact_accuracy"]
                                                       - e["predicted_exact_accuracy"])
                rec["predicted_exact_test_mse_gap"] = (d["predicted_exact_test_mse"]
                                                       - e["predicted_exact_test_mse"])
                rec["problem"] = dict(res.problem)
                out[f"{name}/{act}/sa={sa}"] = rec
                print(f"accuracy {name} {act} {sa}: {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    return out


def _kernel_gap(X: np.ndarray, labels: np.ndarray, act: str, sa: float, tau0: float,
                surrogate, width: int, realizations: int) -> dict:
    sol = solve_four_equations(act, sa, tau0)
    t0 = time.perf_counter()
    Gs = np.asarray(sampled_ck(X, act, sa, width=width, realizations=realizations,
                               solution=sol, rng=0).ck)
    t1 = time.perf_counter()
    Gt = np.asarray(surrogate(sol).ck)
    t2 = time.perf_counter()
    Ge = np.asarray(exact_ck(X, act, sa, solution=sol).ck)
    ev_s, ev_t, ev_e = (np.linalg.eigvalsh(G) for G in (Gs, Gt, Ge))
    sd = spectral_distances(ev_s, ev_t)
    sde = spectral_distances(ev_e, ev_t)
    return {"relative_operator_error": relative_operator_distance(Gt, Gs),
            "ks": sd.ks, "w1": sd.w1,
            "surrogate_vs_exact_relative_operator_error": relative_operator_distance(Gt, Ge),
            "surrogate_vs_exact_ks": sde.ks,
            "sampled_vs_exact_relative_operator_error": relative_operator_distance(Gs, Ge),
            "sampled_s": t1 - t0, "surrogate_s": t2 - t1}


def section_kernels(args: argparse.Namespace) -> dict:
    out = {}
    for classes, name in (((0, 1), "digits_0v1"), (None, "digits_all")):
        try:
            d = load_labelled_data("digits", classes=classes)
        except ImportError:
            return {"skipped": "scikit-learn missing"}
        X, codes = np.asarray(d.X), np.asarray(d.codes)
        est = plugin_statistics(X, codes)
        p = d.p
        covs = np.stack([est.omega[:, codes == a] @ est.omega[:, codes == a].T
                         / (np.sum(codes == a) - 1) for a in range(d.K)])
        mix = GaussianMixture(est.means, covs, d.sizes / d.n)
        sample = mix.sample(sizes=d.sizes, rng=1)
        for act in args.activations:
            for sa in (0.2, 0.5):
                real = _kernel_gap(X, codes, act, sa, est.statistics.tau0,
                                   lambda sol: plugin_ck_surrogate(X, codes, solution=sol),
                                   args.kernel_width, args.realizations)
                st = mix.statistics(sample)
                gauss = _kernel_gap(np.asarray(sample.X), np.asarray(sample.labels), act, sa,
                                    st.tau0,
                                    lambda sol: mixture_ck_surrogate(mix, sample, solution=sol),
                                    args.kernel_width, args.realizations)
                out[f"{name}/{act}/sa={sa}"] = {"n": d.n, "p": p, "digits": real,
                                               "gaussian_mixture_same_statistics": gauss}
                print(f"kernels {name} {act} {sa}", file=sys.stderr, flush=True)
    return out


def section_ratio(args: argparse.Namespace) -> dict:
    mix = default_mixture(256, 2)
    out = {}
    for act in args.activations:
        t0 = time.perf_counter()
        curves = ratio_curves(mix, (0.5, 1.0, 2.0, 4.0), 512, act, 0.2, ridge=0.1,
                              width=1024, seeds=args.ratio_seeds)
        out[act] = {"curves": [c.to_dict() for c in curves],
                    "wall_s": time.perf_counter() - t0}
    return out


def section_steps(args: argparse.Namespace) -> dict:
    """Each step of docs/generalization.md §2 on DEQ features, against Monte Carlo."""
    mix = default_mixture(256, 2)
    prob = mixture_problem(mix, 512, 512, rng=2)
    out = {}
    tr, te = np.asarray(prob.train), np.asarray(prob.test)
    ctr, cte = np.asarray(prob.codes)[tr], np.asarray(prob.codes)[te]
    for act in args.activations:
        sol = problem_solution(prob, act, 0.2)
        G, _ = exact_problem_kernels(prob, sol)
        m, lam, R = 256, 0.1, args.steps_seeds
        Gtr = G[np.ix_(tr, tr)]
        eq = rf_ridge_equivalent(Gtr, G[np.ix_(te, tr)], np.diag(G)[te], ctr, cte, 2,
                                 width=m, ridges=(lam,))[0]
        phi = np.maximum(np.linalg.eigvalsh(Gtr), 0)
        trQbar = float(np.mean(1.0 / (phi / (1 + eq.delta) + lam)))
        gram, trq, scores = np.zeros_like(G), [], []
        for s in range(R):
            Z = deq_features(prob, sol, m, np.random.default_rng([7, s]))
            Ztr = Z[:, tr]
            gram += Z.T @ Z / R
            trq.append(float(np.mean(1.0 / (np.linalg.eigvalsh(Ztr.T @ Ztr) + lam))))
            sc = ridge_scores(Ztr.T @ Ztr, Z[:, te].T @ Ztr, ctr, cte, 2, (lam,))[0]
            scores.append((sc.train_mse, sc.test_mse))
        sc = np.array(scores)
        se = lambda v: float(np.std(v, ddof=1) / math.sqrt(R))  # noqa: E731
        out[act] = {
            "m": m, "ridge": lam, "seeds": R,
            "step1_mean_gram_vs_exact_ck_relative_operator": relative_operator_distance(gram, G),
            "step2_trace_Q_observed": float(np.mean(trq)), "step2_trace_Q_se": se(trq),
            "step2_trace_Qbar": trQbar,
            "step3_train_mse_observed": float(sc[:, 0].mean()), "step3_train_mse_se": se(sc[:, 0]),
            "step3_train_mse_predicted": eq.train_mse,
            "step4_test_mse_observed": float(sc[:, 1].mean()), "step4_test_mse_se": se(sc[:, 1]),
            "step4_test_mse_predicted": eq.test_mse}
    return out


def report(result: dict) -> str:
    """Markdown tables of a results JSON (the tables of docs/generalization.md §5)."""
    lines = []
    for act, g in result.get("grid", {}).items():
        lines += [f"\n**grid, {act}, sa = 0.2** (test MSE; pass: within max(5%, 2 se))\n",
                  "| learner | m | ridge | observed +- se | exact-kernel pred. (rel.) | "
                  "statistics pred. (rel.) |", "|---|---|---|---|---|---|"]
        for r in g["rows"]:
            lines.append(
                f"| {r['method']} | {int(r['width'])} | {r['ridge']:g} | {r['observed']:.4f} "
                f"+- {r['observed_se']:.4f} | {r['predicted_exact']:.4f} "
                f"({100 * r['relative_error_exact']:+.1f}%{'' if r['pass_exact'] else ' x'}) | "
                f"{r['predicted_surrogate']:.4f} ({100 * r['relative_error_surrogate']:+.1f}%"
                f"{'' if r['pass_surrogate'] else ' x'}) |")
        lines.append(f"\ntiming: {json.dumps({k: round(v, 2) for k, v in g['timing'].items()})}")
    acc = result.get("accuracy", {})
    if acc:
        lines += ["\n**accuracy** (observed over seeds +- se; predicted from the statistics)\n",
                  "| problem / activation / sa | ridge | deq_rf | enn_rf | gap (se) | "
                  "ck_kernel | ntk_kernel | predicted deq_rf | predicted ck | pred. s | obs. s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for k, r in acc.items():
            d, e = r["deq_rf"], r["enn_rf"]
            t = r["timing"]
            lines.append(
                f"| {k} | {r['ridge']:g} | {d['observed_accuracy']:.4f} +- "
                f"{d['observed_accuracy_se']:.4f} | {e['observed_accuracy']:.4f} +- "
                f"{e['observed_accuracy_se']:.4f} | {r['accuracy_gap']:+.4f} ({r['gap_se']:.4f}) | "
                f"{r['ck_kernel']['observed_accuracy']:.4f} | "
                f"{r['ntk_kernel']['observed_accuracy']:.4f} | "
                f"{d['predicted_accuracy']:.4f} | {r['ck_kernel']['predicted_accuracy']:.4f} | "
                f"{t.get('predicted_surrogate_s', float('nan')):.2f} | {t['observed_s']:.1f} |")
    if acc and "predicted_exact_accuracy_gap" in next(iter(acc.values())):
        lines += ["\n**accuracy gap, observed and predicted** (DEQ - designed; predicted from "
                  "each network's exact kernels, and from the statistics)\n",
                  "| problem / activation / sa | observed acc. gap (se) | predicted acc. gap: "
                  "exact, statistics | observed test MSE gap | predicted test MSE gap: exact, "
                  "statistics |", "|---|---|---|---|---|"]
        for k, r in acc.items():
            d, e = r["deq_rf"], r["enn_rf"]
            lines.append(
                f"| {k} | {r['accuracy_gap']:+.4f} ({r['gap_se']:.4f}) | "
                f"{r['predicted_exact_accuracy_gap']:+.4f}, "
                f"{d['predicted_accuracy'] - e['predicted_accuracy']:+.4f} | "
                f"{d['observed_test_mse'] - e['observed_test_mse']:+.4f} | "
                f"{r['predicted_exact_test_mse_gap']:+.4f}, "
                f"{d['predicted_test_mse'] - e['predicted_test_mse']:+.4f} |")
    hid = result.get("hidden", {})
    if hid:
        lines += ["\n**hidden width** (relu, designed lrelu2 with hidden layer ratio x m; "
                  "gap = DEQ - designed accuracy)\n",
                  "| problem / sa | ridge | deq_rf acc. | ratio | enn_rf acc. | gap / se | "
                  "enn test MSE vs the one-layer prediction | enn two-layer prediction: acc., "
                  "test MSE (rel.) |", "|---|---|---|---|---|---|---|---|"]
        for k, v in hid.items():
            for r in v["rows"]:
                two = ""
                if "enn_predicted_test_mse" in r:
                    rel = r["enn_predicted_test_mse"] / r["enn_test_mse"] - 1
                    two = (f"{r['enn_predicted_accuracy']:.4f}, "
                           f"{r['enn_predicted_test_mse']:.4f} ({100 * rel:+.1f}%)")
                lines.append(
                    f"| {k} | {v['ridge']:g} | {v['deq_accuracy']:.4f} +- "
                    f"{v['deq_accuracy_se']:.4f} | {r['hidden_ratio']:g} | "
                    f"{r['enn_accuracy']:.4f} +- {r['enn_accuracy_se']:.4f} | "
                    f"{r['gap_in_se']:+.2f} | {100 * r['enn_mse_vs_prediction']:+.1f}% | "
                    f"{two} |")
    header = False
    for k, v in result.get("kernels", {}).items():
        if not isinstance(v, dict) or "digits" not in v:
            continue
        if not header:
            header = True
            lines += ["\n**digits kernels** (sampled CK at m = 1024, 8 draws)\n",
                      "| data / activation / sa | n | digits: rel. op. (sampled, exact) | "
                      "KS | mixture same stats: rel. op. (sampled, exact) | KS |",
                      "|---|---|---|---|---|---|"]
        a, b = v["digits"], v["gaussian_mixture_same_statistics"]
        lines.append(
            f"| {k} | {v['n']} | {a['relative_operator_error']:.3f}, "
            f"{a['surrogate_vs_exact_relative_operator_error']:.3f} | {a['ks']:.3f} | "
            f"{b['relative_operator_error']:.3f}, "
            f"{b['surrogate_vs_exact_relative_operator_error']:.3f} | {b['ks']:.3f} |")
    for act, st in result.get("steps", {}).items():
        lines.append(
            f"\n**steps, {act}** (m = {st['m']}, ridge {st['ridge']}, {st['seeds']} draws): "
            f"mean Z^T Z vs exact CK rel. op. "
            f"{st['step1_mean_gram_vs_exact_ck_relative_operator']:.4f}; (1/n) tr Q "
            f"{st['step2_trace_Q_observed']:.5f} +- {st['step2_trace_Q_se']:.5f} vs "
            f"{st['step2_trace_Qbar']:.5f}; train MSE {st['step3_train_mse_observed']:.4f} +- "
            f"{st['step3_train_mse_se']:.4f} vs {st['step3_train_mse_predicted']:.4f}; test MSE "
            f"{st['step4_test_mse_observed']:.4f} +- {st['step4_test_mse_se']:.4f} vs "
            f"{st['step4_test_mse_predicted']:.4f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--section", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--activations", nargs="+", default=["relu", "tanh"])
    ap.add_argument("--widths", nargs="+", type=int, default=[256, 1024, 4096])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--accuracy-width", type=int, default=1024)
    ap.add_argument("--kernel-width", type=int, default=1024)
    ap.add_argument("--realizations", type=int, default=8)
    ap.add_argument("--ratio-seeds", type=int, default=5)
    ap.add_argument("--hidden-ratios", nargs="+", type=float, default=[1, 2, 4, 8])
    ap.add_argument("--hidden-draws", type=int, default=5)
    ap.add_argument("--steps-seeds", type=int, default=40)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                  "bench_generalization.json"))
    ap.add_argument("--report", action="store_true",
                    help="print the JSON's tables as markdown and exit")
    args = ap.parse_args()
    if args.report:
        with open(args.out) as fh:
            print(report(json.load(fh)))
        return
    result = {"threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            result = {**json.load(fh), **result}
    for sec in args.section:
        t0 = time.perf_counter()
        result[sec] = globals()[f"section_{sec}"](args)
        result[sec + "_wall_s"] = time.perf_counter() - t0
        result[sec + "_command"] = " ".join(sys.argv)
        with open(args.out, "w") as fh:
            json.dump(json_ready(result), fh, indent=1)
    print(args.out)


if __name__ == "__main__":
    main()
