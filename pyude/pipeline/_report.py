"""What a run leaves behind: results as a dict, `report.md`, the terminal summary and the
plots."""

from __future__ import annotations

import sympy
import torch

from ._selection import _coefficient_terms


def summary(results: dict) -> str:
    """A few lines for the terminal: the discovered equations and how they compare."""
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
    return "\n".join(lines)


def _failure_report(r: dict) -> str:
    return "\n".join([f"# pyude discovery report: {r['problem']}", "",
                      f"**Failed in the {r['failed']['stage']} stage** after "
                      f"{r['seconds']:.1f} s:", "", f"    {r['failed']['message']}", "",
                      f"seed {r['seed']}, backend {r['backend']}, symbolic regression by "
                      f"{r['discovery']}.", "", f"Versions: {r['versions']}", ""])


def _results(spec, fitted, found, model, loss, oracle, oracle_loss, trials) -> dict:
    equations = model.equations()
    out = dict(
        fit=dict(best_loss=fitted.best_loss, iterations=len(fitted.losses),
                 stopped=fitted.stopped, seconds=fitted.seconds),
        network_regression={k: str(v.expr) for k, v in found.selected.items()},
        discovered=dict(equations=[str(e) for e in equations],
                        latex=[sympy.latex(e) for e in equations],
                        network_terms=[str(e) for e in model.network_terms()],
                        terms=[_coefficient_terms(e) for e in model.equations(None)], loss=loss,
                        coefficients={k: model.p[k] for k in model.coefficients},
                        u0=model.u0.tolist()),
        structures_tried=[dict(bic=b, loss=lo, equations=[str(e) for e in eqs])
                          for b, lo, eqs in trials[:10]],
        extrapolation={},
    )
    if oracle is not None:
        out["oracle"] = dict(equations=[str(e) for e in oracle.equations()],
                             network_terms=[str(e) for e in oracle.network_terms()],
                             loss=oracle_loss,
                             coefficients={k: oracle.p[k] for k in oracle.coefficients},
                             u0=oracle.u0.tolist())
        out["truth"] = [str(e) for e in spec.true_terms]
        out["true_u0"] = list(spec.u0)
    return out


def _report(r: dict, with_plots: bool) -> str:
    t = r["timings"]
    source = (f"simulated, Gaussian noise of {r['noise']:.2%} of each state's mean"
              if r["noise"] is not None else "from the given data")
    lines = [f"# pyude discovery report: {r['problem']}", "",
             f"Data {source}; seed {r['seed']}; backend {r['backend']}; symbolic regression by "
             f"{r['discovery']}. {r['seconds']:.1f} s in all (UDE fit {t['fit']:.1f} s, "
             f"regression {t['discover']:.1f} s, structure search and refits "
             f"{t['refit']:.1f} s).", ""]
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
    for j, term in enumerate(r["discovered"]["network_terms"]):
        row = [f"network term {j + 1}", f"${_latex(term)}$"]
        if oracle:
            row += [f"${_latex(oracle['network_terms'][j])}$", f"${_latex(r['truth'][j])}$"]
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
    fit = r["fit"]
    lines += ["", "## UDE fit", "", f"Best trajectory MSE {fit['best_loss']:.4g} after "
              f"{fit['iterations']} iterations (collocation, Adam, LBFGS)"
              + (f"; {fit['stopped']}" if fit["stopped"] else "") + ".",
              "", "Sparse regression on the network's outputs: "
              + "; ".join(f"{k} = {v}" for k, v in r["network_regression"].items()) + ".",
              "", "## Structures tried (best first)", "",
              "BIC of the screening refits through the ODE (rtol 1e-5, coefficients and "
              f"initial state); the fewest coefficients within {r['parsimony']:g} BIC units "
              "of the best "
              "win, then the lower BIC; the chosen one is refit at rtol 1e-7.", ""]
    lines += [f"- BIC {c['bic']:.1f}, MSE {c['loss']:.4g}: {', '.join(c['equations'])}"
              for c in r["structures_tried"]]
    if with_plots:
        lines += ["", "## Plots", "", "![fit](fit.png)", "", "![terms](terms.png)"]
        if extra:
            lines += ["", "![extrapolation](extrapolation.png)"]
    lines += ["", f"Versions: {r['versions']}", ""]
    return "\n".join(lines)


def _vector(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _latex(expr: str) -> str:
    return sympy.latex(sympy.sympify(expr))


def _fmt(value) -> str:
    return f"{value:.2%}" if isinstance(value, float) else str(value)


def _plots(out, spec, t, data, ude, net, model, states, times, ref, disc):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    dense = torch.linspace(float(t[0]), float(t[-1]), states.shape[0], dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(spec.state_names):
        ax.plot(t, data[:, i], "o", ms=3, label=f"{name} data")
        ax.plot(dense, states[:, i], label=f"{name} UDE fit")
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    plt.close(fig)

    from ..symbolic import to_torch
    symbols = [sympy.Symbol(n, real=True) for n in spec.state_names]

    def along(expr):
        value = to_torch([expr], symbols)(*states.unbind(-1))[0]
        return torch.as_tensor(value).expand(len(dense))

    fig, axes = plt.subplots(1, spec.n_network_outputs,
                             figsize=(4.5 * spec.n_network_outputs, 3.5), squeeze=False)
    with torch.no_grad():
        learned = net(states)
    found = model.network_terms(None)
    for j, ax in enumerate(axes[0]):
        ax.plot(dense, learned[:, j], label="network")
        ax.plot(dense, along(found[j]), "--", label="discovered")
        if spec.true_terms and times is not None:
            ax.plot(dense, along(spec.true_terms[j]), ":", label="truth")
        ax.set_title(f"network term {j + 1} along the fitted trajectory", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "terms.png", dpi=110)
    plt.close(fig)
    if times is None:
        return

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(spec.state_names):
        ax.plot(times, ref.u[:, i], label=f"{name} truth")
        if len(disc) == len(times):
            ax.plot(times, disc.u[:, i], "--", label=f"{name} discovered")
    ax.axvline(spec.t_end, color="grey", lw=0.8)
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "extrapolation.png", dpi=110)
    plt.close(fig)
