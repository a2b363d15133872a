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
    throw(ArgumentError("pyude knows no Julia algorithm called $(name)"))
end

"""
    auto_switch(nonstiff, stiff, autodiff, maxstiffstep, maxnonstiffstep, nonstifftol,
                stifftol, dtfac, stiffalgfirst) -> a composite algorithm

`AutoTsit5`, `AutoDP5` or `AutoVern7` (by the name of the non-stiff method) around the stiff
algorithm called `stiff`, with pyude's switching settings.
"""
function auto_switch(nonstiff::AbstractString, stiff::AbstractString, autodiff::Bool,
        maxstiffstep::Integer, maxnonstiffstep::Integer, nonstifftol::Real,
        stifftol::Real, dtfac::Real, stiffalgfirst::Bool)
    inner = algorithm(stiff, autodiff)
    settings = (; maxstiffstep = Int(maxstiffstep), maxnonstiffstep = Int(maxnonstiffstep),
        nonstifftol = Float64(nonstifftol), stifftol = Float64(stifftol),
        dtfac = Float64(dtfac), stiffalgfirst = stiffalgfirst)
    nonstiff == "Tsit5" && return OrdinaryDiffEqTsit5.AutoTsit5(inner; settings...)
    nonstiff == "DP5" && return OrdinaryDiffEqLowOrderRK.AutoDP5(inner; settings...)
    nonstiff == "Vern7" && return OrdinaryDiffEqVerner.AutoVern7(inner; settings...)
    throw(ArgumentError("pyude knows no automatic switch from $(nonstiff)"))
end

"""
    sensitivity(name, vjp) -> a SciMLSensitivity algorithm

`name` is InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint or BacksolveAdjoint; `vjp` is
ZygoteVJP or ReverseDiffVJP (compiled tape: only for right-hand sides without branches).
ZygoteVJP allows a right-hand side that never reads `p` (or `u`): its gradient is then zero,
not a `ZygoteVJPNothingError`.
"""
function sensitivity(name::AbstractString, vjp::AbstractString)
    autojacvec = vjp == "ReverseDiffVJP" ? SciMLSensitivity.ReverseDiffVJP(true) :
                 SciMLSensitivity.ZygoteVJP(allow_nothing = true)
    name == "InterpolatingAdjoint" &&
        return SciMLSensitivity.InterpolatingAdjoint(autojacvec = autojacvec)
    name == "QuadratureAdjoint" &&
        return SciMLSensitivity.QuadratureAdjoint(autojacvec = autojacvec)
    name == "GaussAdjoint" && return SciMLSensitivity.GaussAdjoint(autojacvec = autojacvec)
    name == "BacksolveAdjoint" &&
        return SciMLSensitivity.BacksolveAdjoint(autojacvec = autojacvec)
    throw(ArgumentError("pyude knows no sensitivity algorithm called $(name)"))
end

"""
    solve_options(saveat, abstol, reltol, maxiters, dt, dtmin, dtmax, adaptive, tstops)
        -> NamedTuple of `solve` keywords

`saveat` empty saves every step; `abstol` holds one value or one per state component; `dt`
and `dtmin` are left to OrdinaryDiffEq when zero; `dtmax` and an adaptive `dt` are positive
(OrdinaryDiffEq turns them to the direction of time), a fixed-step `dt` carries the direction.
"""
function solve_options(saveat::AbstractVector, abstol::AbstractVector, reltol::Real,
        maxiters::Integer, dt::Real, dtmin::Real, dtmax::Real, adaptive::Bool,
        tstops::AbstractVector)
    atol = length(abstol) == 1 ? Float64(abstol[1]) : Vector{Float64}(abstol)
    opts = (; saveat = Vector{Float64}(saveat), abstol = atol, reltol = Float64(reltol),
        maxiters = Int(maxiters), dtmax = Float64(dtmax), adaptive = adaptive)
    dt != 0 && (opts = merge(opts, (; dt = Float64(dt))))
    dtmin > 0 && (opts = merge(opts, (; dtmin = Float64(dtmin))))
    isempty(tstops) || (opts = merge(opts, (; tstops = Vector{Float64}(tstops))))
    return opts
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
    solve_forward(rhs, u0, t0, t1, p, alg, options) -> (states (n x T), times, retcode, stats)

Solve without gradients; `options` comes from `solve_options`. `stats` is (nf, naccept,
nreject, njacs, nw, nsolve).
"""
function solve_forward(rhs, u0::AbstractVector, t0::Real, t1::Real, p::AbstractVector,
        alg, options::NamedTuple)
    prob = _problem(rhs, u0, t0, t1, p)
    sol = SciMLBase.solve(prob, alg; options...)
    return (Matrix{Float64}(Array(sol)), Vector{Float64}(sol.t), string(sol.retcode),
        _stats(sol))
end

"""
    solve_pullback(rhs, u0, t0, t1, p, alg, sensealg, options)
        -> (states (n x T), times, retcode, stats, back)

Solve under `Zygote.pullback` with `sensealg`; `back` is handed to `apply_pullback` with the
cotangent of the states. When the solve fails, SciMLSensitivity may throw while it builds the
pullback; the forward solve's return code then comes back with `back === nothing`.
"""
function solve_pullback(rhs, u0in::AbstractVector, t0::Real, t1::Real,
        pin::AbstractVector, alg, sensealg, options::NamedTuple)
    prob = _problem(rhs, u0in, t0, t1, pin)
    info = Ref{Any}((Float64[], "Default", (0, 0, 0, 0, 0, 0)))
    try
        y, back = Zygote.pullback(prob.u0, prob.p) do u0, p
            sol = SciMLBase.solve(prob, alg; u0 = u0, p = p, sensealg = sensealg, options...)
            ChainRulesCore.ignore_derivatives() do
                info[] = (Vector{Float64}(sol.t), string(sol.retcode), _stats(sol))
            end
            Array(sol)
        end
        return (Matrix{Float64}(y), info[][1], info[][2], info[][3], back)
    catch
        ys, ts, retcode, stats = solve_forward(rhs, u0in, t0, t1, pin, alg, options)
        retcode == "Success" && rethrow()
        return (ys, ts, retcode, stats, nothing)
    end
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
