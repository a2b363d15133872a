"""
    PyUDE

The Julia side of pyude's Julia backend. Python loads this file with `include` into
its own module (the package is not added to the Julia environment, so that nothing here can
stop PySR or another package from loading); the environment that pyude's `juliapkg.json`
describes provides every import. Every entry point takes plain arrays, numbers and
strings (as juliacall passes them: `PyArray`s, so arguments are typed `AbstractVector` and
copied to `Vector{Float64}`) and returns plain arrays, strings and tuples.

Written for OrdinaryDiffEq v6 and v7: algorithms come from their sublibraries, Jacobian
choices are ADTypes, results are read through `sol.u`/`Array(sol)`, `sol.stats` and
`string(sol.retcode)`.
"""
module PyUDE

import ADTypes
import ChainRulesCore
import ComponentArrays
import Lux
import OrdinaryDiffEqLowOrderRK
import OrdinaryDiffEqRosenbrock
import OrdinaryDiffEqSDIRK
import OrdinaryDiffEqTsit5
import OrdinaryDiffEqVerner
import Random
import SciMLBase
import SciMLSensitivity
import SpecialFunctions
import Zygote

include("define.jl")
include("models.jl")
include("solve.jl")

end
