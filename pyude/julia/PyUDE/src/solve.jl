# Solving by algorithm name, and gradients through SciMLSensitivity for torch's backward.

_ad(autodiff::Bool) = autodiff ? ADTypes.AutoForwardDiff() : ADTypes.AutoFiniteDiff()

"""
    algorithm(name, autodiff) -> an OrdinaryDiffEq algorithm

The algorithm pyude calls `name` (the same names as OrdinaryDiffEq), from its sublibrary.
`autodiff` chooses ForwardDiff or finite differences for the stiff methods' Jacobians.
"""
function algorithm(name::AbstractString, autodiff::Bool)
    ad = _ad(autodiff)
    name == "Euler" && return OrdinaryDiffEqLowOrderRK.Euler()
    name == "Midpoint" && return OrdinaryDiffEqLowOrderRK.Midpoint()
    name == "Heun" && return OrdinaryDiffEqLowOrderRK.Heun()
    name == "RK4" && return OrdinaryDiffEqLowOrderRK.RK4()
    name == "BS3" && return OrdinaryDiffEqLowOrderRK.BS3()
    name == "DP5" && return OrdinaryDiffEqLowOrderRK.DP5()
    name == "Tsit5" && return OrdinaryDiffEqTsit5.Tsit5()
    name == "Vern7" && return OrdinaryDiffEqVerner.Vern7()
    name == "Rosenbrock23" && return OrdinaryDiffEqRosenbrock.Rosenbrock23(autodiff = ad)
    name == "Rodas4" && return OrdinaryDiffEqRosenbrock.Rodas4(autodiff = ad)
    name == "Rodas5P" && return OrdinaryDiffEqRosenbrock.Rodas5P(autodiff = ad)
    name == "TRBDF2" && return OrdinaryDiffEqSDIRK.TRBDF2(autodiff = ad)
    name == "KenCarp4" && return OrdinaryDiffEqSDIRK.KenCarp4(autodiff = ad)
    name == "Kvaerno5" && return OrdinaryDiffEqSDIRK.Kvaerno5(autodiff = ad)
    if startswith(name, "AutoTsit5:")
        return OrdinaryDiffEqTsit5.AutoTsit5(algorithm(name[11:end], autodiff))
    end
    if startswith(name, "AutoVern7:")
        return OrdinaryDiffEqVerner.AutoVern7(algorithm(name[11:end], autodiff))
    end
    throw(ArgumentError("pyude knows no Julia algorithm called $(name)"))
end

"""
    sensitivity(name, vjp) -> a SciMLSensitivity algorithm

`name` is InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint or BacksolveAdjoint; `vjp` is
ZygoteVJP or ReverseDiffVJP (compiled tape: only for right-hand sides without branches).
"""
function sensitivity(name::AbstractString, vjp::AbstractString)
    autojacvec = vjp == "ReverseDiffVJP" ? SciMLSensitivity.ReverseDiffVJP(true) :
                 SciMLSensitivity.ZygoteVJP()
    name == "InterpolatingAdjoint" &&
        return SciMLSensitivity.InterpolatingAdjoint(autojacvec = autojacvec)
    name == "QuadratureAdjoint" &&
        return SciMLSensitivity.QuadratureAdjoint(autojacvec = autojacvec)
    name == "GaussAdjoint" && return SciMLSensitivity.GaussAdjoint(autojacvec = autojacvec)
    name == "BacksolveAdjoint" &&
        return SciMLSensitivity.BacksolveAdjoint(autojacvec = autojacvec)
    throw(ArgumentError("pyude knows no sensitivity algorithm called $(name)"))
end

function _stats(sol)
    s = sol.stats
    s === nothing && return (0, 0, 0, 0, 0, 0)
    return (s.nf, s.naccept, s.nreject, s.njacs, s.nw, s.nsolve)
end

function _problem(rhs, u0in::AbstractVector, t0::Real, t1::Real, pin::AbstractVector)
    u0 = Vector{Float64}(u0in)
    p = Vector{Float64}(pin)
    return SciMLBase.ODEProblem{false}(rhs, u0, (Float64(t0), Float64(t1)), p)
end

"""
    solve_forward(rhs, u0, t0, t1, p, saveat, alg, abstol, reltol, maxiters)
        -> (states (n x T), times, retcode, stats)

Solve without gradients. `stats` is (nf, naccept, nreject, njacs, nw, nsolve).
"""
function solve_forward(rhs, u0::AbstractVector, t0::Real, t1::Real, p::AbstractVector,
        saveat::AbstractVector, alg, abstol::Real, reltol::Real, maxiters::Integer)
    prob = _problem(rhs, u0, t0, t1, p)
    sol = SciMLBase.solve(prob, alg; saveat = Vector{Float64}(saveat),
        abstol = Float64(abstol), reltol = Float64(reltol), maxiters = Int(maxiters))
    return (Matrix{Float64}(Array(sol)), Vector{Float64}(sol.t), string(sol.retcode),
        _stats(sol))
end

"""
    solve_pullback(rhs, u0, t0, t1, p, saveat, alg, sensealg, abstol, reltol, maxiters)
        -> (states (n x T), retcode, stats, back)

Solve under `Zygote.pullback` with `sensealg`; `back` is handed to `apply_pullback` with the
cotangent of the states.
"""
function solve_pullback(rhs, u0in::AbstractVector, t0::Real, t1::Real,
        pin::AbstractVector, saveat::AbstractVector, alg, sensealg, abstol::Real,
        reltol::Real, maxiters::Integer)
    prob = _problem(rhs, u0in, t0, t1, pin)
    ts = Vector{Float64}(saveat)
    info = Ref{Any}(("Default", (0, 0, 0, 0, 0, 0)))
    y, back = Zygote.pullback(prob.u0, prob.p) do u0, p
        sol = SciMLBase.solve(prob, alg; u0 = u0, p = p, saveat = ts,
            sensealg = sensealg, abstol = Float64(abstol), reltol = Float64(reltol),
            maxiters = Int(maxiters))
        ChainRulesCore.ignore_derivatives() do
            info[] = (string(sol.retcode), _stats(sol))
        end
        Array(sol)
    end
    return (Matrix{Float64}(y), info[][1], info[][2], back)
end

"""
    apply_pullback(back, cotangent, n_u0, n_p) -> (du0, dp)

Gradients with respect to `u0` and the flat parameters for a cotangent of the states
(n x T, the shape `solve_pullback` returned). Missing gradients come back as zeros.
"""
function apply_pullback(back, cotangent::AbstractMatrix, n_u0::Integer, n_p::Integer)
    du0, dp = back(Matrix{Float64}(cotangent))
    du0 === nothing && (du0 = zeros(Int(n_u0)))
    dp === nothing && (dp = zeros(Int(n_p)))
    return (Vector{Float64}(du0), Vector{Float64}(dp))
end

"""
    make_problem(rhs, u0, t0, t1, p) -> SciMLBase.ODEProblem

An out-of-place ODE problem over plain Float64 arrays (for diffeqpy's `de.solve`).
"""
make_problem(rhs, u0::AbstractVector, t0::Real, t1::Real, p::AbstractVector) =
    _problem(rhs, u0, t0, t1, p)
