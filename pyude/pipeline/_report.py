"""What a run leaves behind: the results as a dict (and `results.json`), `report.md` and the
summary printed in the terminal."""

from __future__ import annotations

import sympy

from ._selection import _coefficient_terms


def summary(results: dict) -> str:
    """A few lines for the terminal: the discovered equations, how they compare, and any
    warning about them."""
    names = results.get("state_names") or [f"u{i + 1}" for i in
                                            range(len(results["discovered"]["equations"]))]
    lines = [f"d{n}/dt = {eq}" for n, eq in zip(names, results["discovered"]["equations"])]
    if "recovered" in results:
        lines.append(f"structure recovered: {'yes' if results['recovered'] else 'no'}")
    if "oracle" in results:
        coef = ", ".join(f"{v:.4g}" for v in results["discovered"]["coefficients"].values())
        best = ", ".join(f"{v:.4g}" for v in results["oracle"]["coefficients"].values())
        lines.append(f"coefficients {coef} (oracle refit of the true form: {best}; truth: "
                     f"{', '.join(results['truth'])})")
    extra = results.get("extrapolation")
    if extra:
        a, b = extra["window"]
        lines.append(f"relative L2 error on t in [{a:g}, {b:g}]: {_fmt(extra['discovered'])} "
                     f"(oracle {_fmt(extra['oracle'])})")
    held = results.get("holdout")
    if held:
        lines.append(_holdout_line(held))
    lines += [f"WARNING: {w}" for w in results.get("warnings", [])]
    return "\n".join(lines)


def _holdout_line(h: dict) -> str:
    a, b = h["window"]
    return (f"held-out check on t in [{a:g}, {b:g}] ({h['observations']} observations kept "
            f"out of the fit): relative L2 error {_fmt(h['discovered'])} (network "
            f"{_fmt(h['network'])}, noise level about {_fmt(h['noise_level'])})")


def failure_report(r: dict) -> str:
    done = r.get("structures_tried") or []
    lines = [f"# pyude discovery report: {r['problem']}", "",
             f"**{'Interrupted' if r['status'] == 'interrupted' else 'Failed'} in the "
             f"{r['failed']['stage']} stage** after {r['seconds']:.1f} s:", "",
             f"    {r['failed']['message']}", "",
             f"seed {r['seed']}, backend {r['backend']}, symbolic regression by "
             f"{r['discovery']}."]
    if "fit" in r:
        lines += ["", _fit_line(r["fit"])]
    if done:
        lines += ["", f"## Structures refit before it stopped ({len(done)})", ""]
        lines += [_trial_line(c) for c in done]
    return "\n".join([*lines, "", f"Versions: {r['versions']}", ""])


def fit_summary(fitted, noise_mse: float, starts: int = 1) -> dict:
    return dict(best_loss=fitted.best_loss, iterations=len(fitted.losses),
                stopped=fitted.stopped, seconds=fitted.seconds, noise_mse=noise_mse,
                mse_over_noise=fitted.best_loss / noise_mse if noise_mse > 0 else None,
                starts=starts)


def _fit_line(fit: dict) -> str:
    ratio = fit.get("mse_over_noise")
    starts = fit.get("starts", 1)
    return (f"Best trajectory MSE {fit['best_loss']:.4g} after {fit['iterations']} iterations "
            f"(collocation, Adam, LBFGS)" + (f"; {fit['stopped']}" if fit["stopped"] else "")
            + (f"; the best of {starts} network initialisations (the first ended above "
               f"three times the noise estimate)" if starts > 1 else "")
            + "." + (f" The noise estimate (a smoothing spline's residual over its "
                     f"degrees of freedom) is {fit['noise_mse']:.4g}: the fit's MSE is "
                     f"{ratio:.2f} times it (the estimate is high when the observations "
                     f"sample the dynamics sparsely)." if ratio is not None else ""))


def results(spec, found, model, loss, oracle, oracle_loss, trials) -> dict:
    equations = model.equations()
    out = dict(
        network_regression={k: str(v.expr) for k, v in found.selected.items()},
        discovered=dict(equations=[str(e) for e in equations],
                        latex=[sympy.latex(e) for e in equations],
                        network_terms=[str(e) for e in model.network_terms()],
                        network_terms_latex=[sympy.latex(e) for e in model.network_terms()],
                        terms=[_coefficient_terms(e) for e in model.equations(None)], loss=loss,
                        coefficients={k: model.p[k] for k in model.coefficients},
                        u0=model.u0.tolist()),
        structures_tried=trials,
        extrapolation={},
    )
    if oracle is not None:
        out["oracle"] = dict(equations=[str(e) for e in oracle.equations()],
                             network_terms=[str(e) for e in oracle.network_terms()],
                             network_terms_latex=[sympy.latex(e)
                                                  for e in oracle.network_terms()],
                             loss=oracle_loss,
                             coefficients={k: oracle.p[k] for k in oracle.coefficients},
                             u0=oracle.u0.tolist())
        out["truth"] = [str(e) for e in spec.true_terms]
        out["truth_latex"] = [sympy.latex(e) for e in spec.true_terms]
        out["true_u0"] = list(spec.u0)
    return out


def _trial_line(c: dict) -> str:
    if c.get("abandoned"):
        return f"- abandoned ({c['abandoned']}): {', '.join(c['equations'])}"
    return f"- BIC {c['bic']:.1f}, MSE {c['loss']:.4g}: {', '.join(c['equations'])}"


def report(r: dict, pngs: list[str]) -> str:
    t = r["timings"]
    source = (f"simulated, Gaussian noise of {r['noise']:.2%} of each state's mean"
              if r["noise"] is not None else "from the given data")
    lines = [f"# pyude discovery report: {r['problem']}", "",
             f"Data {source}; seed {r['seed']}; backend {r['backend']}; symbolic regression by "
             f"{r['discovery']} (polynomial library of degree {r['degree']}). "
             f"{r['seconds']:.1f} s in all (UDE fit {t['fit']:.1f} s, "
             f"regression {t['discover']:.1f} s, structure search and refits "
             f"{t['refit']:.1f} s).", ""]
    lines += [f"**Warning:** {w}" for w in r.get("warnings", [])]
    if r.get("warnings"):
        lines.append("")
    if "recovered" in r:
        lines += [f"**Structure recovered: {'yes' if r['recovered'] else 'no'}** (exactly the "
                  f"true model's terms, the known physics untouched).", ""]
    lines += ["## Discovered model", ""]
    names = r.get("state_names") or [f"u_{i + 1}" for i in range(len(r["discovered"]["latex"]))]
    lines += [f"$$\\dot {sympy.latex(sympy.Symbol(n))} = {eq}$$"
              for n, eq in zip(names, r["discovered"]["latex"])]
    oracle = r.get("oracle")
    head = ["", "discovered, refit"] + (["oracle: the true form refit to the same data",
                                         "truth"] if oracle else [])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j, term in enumerate(r["discovered"]["network_terms_latex"]):
        row = [f"network term {j + 1}", f"${term}$"]
        if oracle:
            row += [f"${oracle['network_terms_latex'][j]}$", f"${r['truth_latex'][j]}$"]
        lines.append("| " + " | ".join(row) + " |")
    rows = [["data MSE", f"{r['discovered']['loss']:.4g}"],
            ["initial state (estimated)", _vector(r["discovered"]["u0"])]]
    if oracle:
        rows[0] += [f"{oracle['loss']:.4g}", ""]
        rows[1] += [_vector(oracle["u0"]), _vector(r["true_u0"])]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    extra = r["extrapolation"]
    if extra:
        a, b = extra["window"]
        lines.append(f"| relative L2 error against the truth, t in [{a:g}, {b:g}] | "
                     f"{_fmt(extra['discovered'])} | {_fmt(extra['oracle'])} | |")
    if r.get("holdout"):
        lines += ["", "## Held-out check", "", _holdout_line(r["holdout"]) + ". The "
                  "structure and coefficients were found without these observations; the "
                  "coefficients above were then refit on all of them."]
    lines += ["", "## UDE fit", "", _fit_line(r["fit"]), "",
              "Sparse regression on the network's outputs, for reference (a first guess: "
              "the structure above is chosen by the refits through the ODE below): "
              + "; ".join(f"{k} = {v}" for k, v in r["network_regression"].items()) + ".",
              "", "## Structures tried (best first)", "",
              "BIC of the screening refits through the ODE (rtol 1e-5, coefficients and "
              f"initial state); the fewest coefficients within {r['parsimony']:g} BIC units "
              "of the best win, then the lower BIC; the chosen one is refit at rtol 1e-7. "
              "A candidate whose solution leaves the plausible region or needs far more "
              "steps than the network's is abandoned.", ""]
    ranked = sorted(r["structures_tried"], key=lambda c: (
        bool(c.get("abandoned")), c["bic"] if c["bic"] is not None else 0.0))
    lines += [_trial_line(c) for c in ranked[:12]]
    if len(ranked) > 12:
        lines.append(f"- ... {len(ranked) - 12} more in results.json")
    if pngs:
        lines += ["", "## Plots", ""]
        for png in pngs:
            lines += [f"![{png[:-4]}]({png})", ""]
    lines += ["", f"Versions: {r['versions']}", ""]
    return "\n".join(lines)


def _vector(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _fmt(value) -> str:
    return f"{value:.2%}" if isinstance(value, float) else str(value)
