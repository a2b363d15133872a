"""Ensembles: ROBER parameter sweeps on EnsembleSerial, EnsembleThreads and a local Dask
cluster, against a loop of scipy Radau solves, and the per-chunk cost of the distributed
strategy on empty work.

    python benchmarks/ensemble.py [--trajectories 10000] [--sweep 256] [--workers 2]
        [--scipy 50] [--out benchmarks/results]

Each rate of ROBER (k1, k2, k3) is scaled by a factor in [0.5, 2] drawn from a generator
seeded by the trajectory's index, as in `stiff.py`'s batched comparison; Rodas5P, rtol 1e-6,
atol 1e-10, saved at t = 1e5. The Dask workers are separate processes, started (and warmed
with a small ensemble) before the clock starts. Writes `ensemble.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import pyude
from pyude import (
    EnsembleDistributed,
    EnsembleProblem,
    EnsembleSerial,
    EnsembleThreads,
    solve_ensemble,
)
from pyude.problems import rober

RTOL, ATOL, T1 = 1e-6, 1e-10, 1e5
BASE = dict(k1=0.04, k2=3e7, k3=1e4)


def rates(i: int) -> dict:
    g = torch.Generator().manual_seed(i)
    factors = 2.0 ** (2 * torch.rand(3, generator=g, dtype=torch.float64) - 1)
    return {k: v * factors[j] for j, (k, v) in enumerate(BASE.items())}


def vary(problem, i, repeat):
    return problem.remake(p=rates(i))


def last_state(sol, i):
    return sol.u[-1], False


ENSEMBLE = EnsembleProblem(pyude.ODEProblem(rober, [1.0, 0.0, 0.0], (0.0, T1), BASE),
                           prob_func=vary, output_func=last_state)


def empty(u, p, t):
    return [0.0 * u[0]]


EMPTY = EnsembleProblem(pyude.ODEProblem(empty, [1.0], (0.0, 1.0)))


def timed(strategy, trajectories, batch_size=None, ensemble=ENSEMBLE, **options):
    options = options or dict(saveat=[T1], rtol=RTOL, atol=ATOL)
    began = time.perf_counter()
    sol = solve_ensemble(ensemble, pyude.Rodas5P() if ensemble is ENSEMBLE else
                         pyude.Euler(), strategy, trajectories=trajectories,
                         batch_size=batch_size, **options)
    return time.perf_counter() - began, sol


def scipy_loop(n: int) -> tuple[float, float, np.ndarray]:
    from scipy.integrate import solve_ivp
    out = []
    began, cpu = time.perf_counter(), time.thread_time()
    for i in range(n):
        k1, k2, k3 = (float(v) for v in rates(i).values())

        def f(t, y, k1=k1, k2=k2, k3=k3):
            return [-k1 * y[0] + k3 * y[1] * y[2],
                    k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2], k2 * y[1] ** 2]
        out.append(solve_ivp(f, (0.0, T1), [1.0, 0.0, 0.0], method="Radau", rtol=RTOL,
                             atol=ATOL).y[:, -1])
    return time.perf_counter() - began, time.thread_time() - cpu, np.array(out)


def row(name, seconds, sol):
    cpu = sum(w["cpu_seconds"] for w in sol.stats["workers"].values())
    return dict(strategy=name, seconds=seconds, per_trajectory_ms=1e3 * seconds /
                sol.trajectories, cpu_seconds=cpu,
                cpu_per_trajectory_ms=1e3 * cpu / sol.trajectories, chunks=sol.stats["chunks"],
                batch_size=sol.stats["batch_size"], failed=len(sol.failed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=10_000)
    parser.add_argument("--sweep", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scipy", type=int, default=50,
                        help="trajectories in the scipy Radau loop (timed per trajectory)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads of this process (Dask starts its workers with "
                             "one each); 1 makes the serial rows use one core")
    parser.add_argument("--dask-environ", action="store_true",
                        help="keep Dask's MALLOC_TRIM_THRESHOLD_ in the workers' environment "
                             "(by default it is left out: it costs pyude 10-20%% CPU)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    import dask
    from dask.distributed import Client, LocalCluster
    if not args.dask_environ:
        dask.config.set({"distributed.nanny.pre-spawn-environ": dict(
            OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)})

    began = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    dask = EnsembleDistributed(client.get_executor())
    timed(dask, 2 * args.workers, batch_size=1)          # workers import torch and pyude
    startup = time.perf_counter() - began
    print(f"Dask LocalCluster, {args.workers} worker processes: started and warm in "
          f"{startup:.1f} s")

    result = dict(machine=dict(cpus=os.cpu_count(), python=platform.python_version(),
                               torch=torch.__version__, load_average=os.getloadavg()),
                  workers=args.workers, torch_threads=args.torch_threads,
                  dask_malloc_trim_threshold=args.dask_environ,
                  cluster_startup_s=startup, rtol=RTOL, atol=ATOL)
    for key, n in (("sweep", args.sweep), ("large", args.trajectories)):
        chunk = dask.default_batch_size(n)
        rows = []
        t_serial, serial = timed(EnsembleSerial(), n)
        rows.append(row("serial (one chunk)", t_serial, serial))
        t, threads = timed(EnsembleThreads(), n)
        rows.append(row("threads (one chunk)", t, threads))
        t_chunked, chunked = timed(EnsembleSerial(), n, batch_size=chunk)
        rows.append(row(f"serial (chunks of {chunk})", t_chunked, chunked))
        t_dask, dist = timed(dask, n)
        rows.append(row(f"dask, {args.workers} workers (chunks of {chunk})", t_dask, dist))
        same = all(torch.equal(a, b) for a, b in zip(chunked, dist))
        # CPU seconds of the threads that ran the chunks: on a machine shared with other
        # work, the wall-clock ratio measures the contention as much as the strategy
        cpu_serial = sum(w["cpu_seconds"] for w in chunked.stats["workers"].values())
        cpu_path = max(w["cpu_seconds"] for w in dist.stats["workers"].values())
        print(f"\nROBER x {n}, Rodas5P rtol {RTOL:g} atol {ATOL:g}")
        for r in rows:
            print(f"  {r['strategy']:34} {r['seconds']:8.2f} s  {r['per_trajectory_ms']:7.3f} "
                  f"ms/trajectory  (CPU {r['cpu_seconds']:6.2f} s)  failed {r['failed']}")
        print(f"  dask vs serial, same chunks: {t_chunked / t_dask:.2f}x; vs serial in one "
              f"chunk: {t_serial / t_dask:.2f}x; dask bits equal serial's on the same "
              f"chunks: {same}")
        print(f"  CPU seconds: serial {cpu_serial:.2f}, busiest dask worker {cpu_path:.2f} "
              f"({cpu_serial / cpu_path:.2f}x); per worker "
              + ", ".join(f"{w['chunks']} chunks {w['cpu_seconds']:.2f} s"
                          for w in dist.stats["workers"].values()))
        result[key] = dict(trajectories=n, rows=rows, speedup_same_chunks=t_chunked / t_dask,
                           speedup_vs_one_chunk=t_serial / t_dask, same_bits=same,
                           cpu_serial_s=cpu_serial, cpu_busiest_worker_s=cpu_path,
                           dask_workers=dist.stats["workers"])

    t_scipy, cpu_scipy, ys = scipy_loop(args.scipy)
    per_scipy = t_scipy / args.scipy
    best = min(r["per_trajectory_ms"] for r in result["large"]["rows"]) / 1e3
    cpu_one_chunk = result["large"]["rows"][0]["cpu_per_trajectory_ms"] / 1e3
    ends = torch.stack(list(dist)[:args.scipy]).numpy()
    diff = float(np.max(np.abs(ends - ys) / (ATOL / RTOL + np.abs(ys))))
    print(f"\nscipy Radau loop (numpy f): {1e3 * per_scipy:.1f} ms/trajectory over "
          f"{args.scipy}; best ensemble {1e3 * best:.3f} ms/trajectory: "
          f"{per_scipy / best:.0f}x; max scaled difference {diff:.1e}")
    print(f"  in CPU seconds: scipy {1e3 * cpu_scipy / args.scipy:.1f} ms/trajectory, serial "
          f"in one chunk {1e3 * cpu_one_chunk:.3f}: "
          f"{cpu_scipy / args.scipy / cpu_one_chunk:.0f}x")
    result["scipy"] = dict(trajectories=args.scipy, per_trajectory_ms=1e3 * per_scipy,
                           speedup_best=per_scipy / best, dask_speedup=per_scipy /
                           (result["large"]["rows"][3]["per_trajectory_ms"] / 1e3),
                           max_scaled_difference=diff,
                           cpu_per_trajectory_ms=1e3 * cpu_scipy / args.scipy,
                           cpu_speedup_one_chunk=cpu_scipy / args.scipy / cpu_one_chunk)

    # per-chunk cost on empty work: one Euler step of a 1-state problem per chunk
    opts = dict(dt=1.0)
    chunks = 200
    t_empty_serial, _ = timed(EnsembleSerial(), chunks, 1, EMPTY, **opts)
    t_empty_dask, _ = timed(dask, chunks, 1, EMPTY, **opts)
    latency = []
    for _ in range(20):
        latency.append(timed(dask, 1, 1, EMPTY, **opts)[0])
    print(f"\nempty chunks: serial {1e3 * t_empty_serial / chunks:.2f} ms each; dask "
          f"{1e3 * t_empty_dask / chunks:.2f} ms each over {chunks} chunks on "
          f"{args.workers} workers (throughput); one-chunk ensemble round trip "
          f"{1e3 * np.median(latency):.1f} ms (median of 20)")
    result["empty_chunk"] = dict(serial_ms=1e3 * t_empty_serial / chunks,
                                 dask_ms_per_chunk=1e3 * t_empty_dask / chunks,
                                 dask_round_trip_ms=1e3 * float(np.median(latency)))
    client.close()
    cluster.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result["machine"]["load_average_after"] = os.getloadavg()
    (out / "ensemble.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {out / 'ensemble.json'}")


if __name__ == "__main__":
    main()
