# Lux networks over one flat weight vector, and the right-hand sides built on them.

rbf(x) = exp(-x^2)

# torch's nn.GELU(): the exact form x Φ(x) (NNlib's `gelu` is the tanh approximation).
gelu_erf(x) = x / 2 * (1 + SpecialFunctions.erf(x / sqrt(oftype(x, 2))))

# torch's nn.GELU(approximate="tanh").
gelu_tanh(x) = x / 2 * (1 + tanh(sqrt(oftype(x, 2) / oftype(x, pi)) * (x + oftype(x, 0.044715) * x^3)))

"""
    softplus(beta, threshold) -> x -> y

torch's `nn.Softplus(beta, threshold)`: `log(1 + exp(beta x)) / beta`, and `x` itself where
`beta x > threshold`.
"""
softplus(beta::Real, threshold::Real) =
    x -> beta * x > threshold ? x : log1p(exp(beta * x)) / beta

const ACTIVATIONS = Dict{String, Any}(
    "identity" => identity, "tanh" => tanh, "relu" => Lux.relu, "sigmoid" => Lux.sigmoid,
    "gelu_erf" => gelu_erf, "gelu_tanh" => gelu_tanh, "rbf" => rbf,
)

"""
    activation(name, beta, threshold) -> Function

The activation called `name`; `softplus` takes torch's `beta` and `threshold`.
"""
function activation(name::AbstractString, beta::Real, threshold::Real)
    name == "softplus" && return softplus(Float64(beta), Float64(threshold))
    haskey(ACTIVATIONS, name) && return ACTIVATIONS[name]
    throw(ArgumentError("pyude knows no activation called $(name)"))
end

"""
    build_mlp(ins, outs, activations, betas, thresholds) -> (model, axes, nparams)

A Lux `Chain` of `Dense(ins[i] => outs[i], activation)` layers (`activations` is one
comma-separated string, so that no Python list has to cross; `betas` and `thresholds` are the
softplus settings per layer), wrapped as a stateful layer that takes its weights on each call,
the ComponentArrays axes that rebuild those weights from a flat vector (per layer: weight in
column-major order, then bias), and the weight count.
"""
function build_mlp(ins::AbstractVector, outs::AbstractVector, activations::AbstractString,
        betas::AbstractVector, thresholds::AbstractVector)
    names = split(String(activations), ",")
    layers = [Lux.Dense(Int(ins[i]) => Int(outs[i]),
                  activation(String(names[i]), betas[i], thresholds[i]))
              for i in eachindex(ins)]
    model = Lux.Chain(layers...)
    ps, st = Lux.setup(Random.Xoshiro(0), model)
    axes = ComponentArrays.getaxes(ComponentArrays.ComponentArray(ps))
    stateful = Lux.StatefulLuxLayer{true}(model, nothing, st)
    return stateful, axes, Lux.parameterlength(model)
end

"""
    ode_rhs(f) -> (u, p, t) -> du

The out-of-place right-hand side of a plain model: `f(u, p, t)` from the generated source.
"""
ode_rhs(f) = (u, p, t) -> f(u, p, t)

"""
    ude_rhs(f, model, axes, nphys) -> (u, p, t) -> du

A UDE's right-hand side over one flat parameter vector `p = [physical; weights]`: the network
runs on the state and the generated `f(u, p_physical, t, nn_out)` adds the known physics.
"""
function ude_rhs(f, model, axes, nphys::Integer)
    return function (u, p, t)
        physical = p[1:nphys]
        weights = ComponentArrays.ComponentArray(p[(nphys + 1):end], axes)
        return f(u, physical, t, model(u, weights))
    end
end

"""
    neural_rhs(model, axes) -> (u, p, t) -> du

A neural ODE's right-hand side: the network is the whole vector field.
"""
neural_rhs(model, axes) = (u, p, t) -> model(u, ComponentArrays.ComponentArray(p, axes))
