# The Julia side alone: julia --project=julia/PyUDE -e 'import Pkg; Pkg.test()'
import PyUDE
import Test

const LV_SOURCE = """
function lotka_volterra(u, p, t)
    x = u[1]
    y = u[2]
    return [
        ((p[1] * x) + (-(p[2] * x * y))),
        ((-(p[3] * y)) + (p[4] * x * y)),
    ]
end
"""

const DECAY_SOURCE = """
function decay(u, p, t)
    x = u[1]
    return [
        (-x),
    ]
end
"""

options(saveat; kw...) = PyUDE.solve_options(saveat, get(kw, :abstol, [1e-10]), 1e-10,
    get(kw, :maxiters, 100000), get(kw, :dt, 0.0), 0.0, get(kw, :dtmax, 10.0),
    get(kw, :adaptive, true), get(kw, :tstops, Float64[]))

Test.@testset "PyUDE" begin
    f = PyUDE.define_rhs(LV_SOURCE, "lotka_volterra")
    rhs = PyUDE.ode_rhs(f)
    alg = PyUDE.algorithm("Tsit5", true)
    p = [1.5, 1.0, 3.0, 1.0]
    ys, ts, retcode, stats = PyUDE.solve_forward(rhs, [1.0, 1.0], 0.0, 10.0, p, alg,
        options([10.0]))
    Test.@test retcode == "Success"
    Test.@test ts == [10.0]
    Test.@test isapprox(ys[:, end], [1.026344767575089, 0.9096910781360416]; rtol = 1e-8)
    Test.@test stats[1] > 0

    # every step saved without saveat; per-component abstol; tstops are stepped onto
    ys, ts, retcode, _ = PyUDE.solve_forward(rhs, [1.0, 1.0], 0.0, 1.0, p, alg,
        options(Float64[]; abstol = [1e-10, 1e-9], tstops = [0.5]))
    Test.@test retcode == "Success"
    Test.@test length(ts) > 2 && size(ys, 2) == length(ts)
    Test.@test 0.5 in ts

    # fixed steps: Euler and RK4 at dt
    for name in ("Euler", "RK4")
        _, ts, retcode, _ = PyUDE.solve_forward(rhs, [1.0, 1.0], 0.0, 1.0, p,
            PyUDE.algorithm(name, true), options(Float64[]; dt = 0.25, adaptive = false))
        Test.@test retcode == "Success"
        Test.@test ts ≈ [0.0, 0.25, 0.5, 0.75, 1.0]
    end

    sensealg = PyUDE.sensitivity("InterpolatingAdjoint", "ZygoteVJP")
    y, ts, rc, _, back = PyUDE.solve_pullback(rhs, [1.0, 1.0], 0.0, 5.0, p, alg, sensealg,
        options([1.0, 5.0]))
    Test.@test rc == "Success"
    Test.@test ts == [1.0, 5.0]
    du0, dp = PyUDE.apply_pullback(back, ones(size(y)), 2, 4)
    Test.@test length(du0) == 2
    Test.@test length(dp) == 4

    # a right-hand side that never reads p: a zero gradient, not ZygoteVJPNothingError
    decay = PyUDE.ode_rhs(PyUDE.define_rhs(DECAY_SOURCE, "decay"))
    y, _, rc, _, back = PyUDE.solve_pullback(decay, [1.0], 0.0, 1.0, [2.0], alg, sensealg,
        options([1.0]))
    Test.@test rc == "Success"
    du0, dp = PyUDE.apply_pullback(back, ones(size(y)), 1, 1)
    Test.@test isapprox(du0[1], exp(-1.0); rtol = 1e-6)
    Test.@test dp == [0.0]

    # a failed solve under gradients returns its code instead of throwing
    _, _, rc, _, back = PyUDE.solve_pullback(rhs, [1.0, 1.0], 0.0, 10.0, p, alg, sensealg,
        options([5.0, 10.0]; maxiters = 3))
    Test.@test rc == "MaxIters"
    Test.@test back === nothing

    auto = PyUDE.auto_switch("DP5", "Rosenbrock23", true, 10, 3, 0.9, 0.9, 2.0, false)
    _, _, retcode, _ = PyUDE.solve_forward(rhs, [1.0, 1.0], 0.0, 1.0, p, auto,
        options([1.0]))
    Test.@test retcode == "Success"

    model, axes, n = PyUDE.build_mlp([2, 5], [5, 2], "rbf,identity", [1.0, 1.0],
        [20.0, 20.0])
    Test.@test n == 2 * 5 + 5 + 5 * 2 + 2
    Test.@test_throws ArgumentError PyUDE.algorithm("NotAMethod", true)
    Test.@test_throws ArgumentError PyUDE.activation("swish", 1.0, 20.0)
    Test.@test_throws ArgumentError PyUDE.auto_switch("BS3", "Rodas5P", true, 10, 3, 0.9,
        0.9, 2.0, false)
    Test.@test_throws ArgumentError PyUDE.sensitivity("ForwardSensitivity", "ZygoteVJP")
    Test.@test axes !== nothing
    Test.@test model !== nothing

    # torch's activations: exact GELU and Softplus(beta, threshold)
    Test.@test isapprox(PyUDE.gelu_erf(1.0), 0.8413447460685429; rtol = 1e-12)
    Test.@test isapprox(PyUDE.gelu_tanh(1.0), 0.8411919906082768; rtol = 1e-12)
    sp = PyUDE.activation("softplus", 2.0, 1.0)
    Test.@test sp(1.0) == 1.0
    Test.@test isapprox(sp(0.25), log1p(exp(0.5)) / 2; rtol = 1e-14)
end
