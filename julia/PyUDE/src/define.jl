# Generated source to a function. Kept apart: fatou checks no names in a file that evaluates
# code, so the rest of the package stays checked.

"""
    define_rhs(src, name) -> Function

Evaluate generated Julia source (one function definition, printed by pyude's Julia printer)
in a fresh module and return the function called `name`. Return it to Python and pass it
back in a later call, so that it is called in a newer world age than the one it was made in.
"""
function define_rhs(src::AbstractString, name::AbstractString)
    sandbox = Module(:PyUDEModel)
    Core.eval(sandbox, :(import Base: exp, log, sin, cos, tan, tanh, sqrt, abs, min, max))
    Core.eval(sandbox, Meta.parseall(String(src)))
    return getfield(sandbox, Symbol(name))
end
