# The Julia side alone: julia --project=pyude/julia/PyUDE -e 'import Pkg; Pkg.test()'
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

Test.@testset "PyUDE" begin
    f = PyUDE.define_rhs(LV_SOURCE, "lotka_volterra")
    rhs = PyUDE.ode_rhs(f)
    alg = PyUDE.algorithm("Tsit5", true)
    ys, ts, retcode, stats = PyUDE.solve_forward(rhs, [1.0, 1.0], 0.0, 10.0,
        [1.5, 1.0, 3.0, 1.0], [10.0], alg, 1e-10, 1e-10, 100000)
    Test.@test retcode == "Success"
    Test.@test ts == [10.0]
    Test.@test isapprox(ys[:, end], [1.026344767575089, 0.9096910781360416]; rtol = 1e-8)
    Test.@test stats[1] > 0

    sensealg = PyUDE.sensitivity("InterpolatingAdjoint", "ZygoteVJP")
    y, rc, _, back = PyUDE.solve_pullback(rhs, [1.0, 1.0], 0.0, 5.0, [1.5, 1.0, 3.0, 1.0],
        [1.0, 5.0], alg, sensealg, 1e-10, 1e-10, 100000)
    Test.@test rc == "Success"
    du0, dp = PyUDE.apply_pullback(back, ones(size(y)), 2, 4)
    Test.@test length(du0) == 2
    Test.@test length(dp) == 4

    model, axes, n = PyUDE.build_mlp([2, 5], [5, 2], "rbf,identity")
    Test.@test n == 2 * 5 + 5 + 5 * 2 + 2
    Test.@test_throws ArgumentError PyUDE.algorithm("NotAMethod", true)
    Test.@test axes !== nothing
    Test.@test model !== nothing
end
