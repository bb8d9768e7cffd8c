"""Black-76 on the forward: option prices, implied volatilities and greeks, on arrays.

Inputs broadcast against each other like numpy arguments; the work is done element by element
by the compiled kernels in ``black76_kernels``, which take flat float64 (and bool) arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.pricing import black76_kernels as kernels
from monitor.pricing.black76_kernels import IVReason

__all__ = [
    "Greeks",
    "IVReason",
    "greeks",
    "implied_vol",
    "implied_vol_with_reason",
    "price",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_Scalar = TypeVar("_Scalar", bound=np.generic)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of one option on one unit of the forward, in raw units.

    ``vega``, ``vanna`` and ``volga`` are per unit of sigma (1.0 = 100 vol points) and
    ``theta`` is -dV/dT per year with r held fixed, so it includes the r*V discounting term;
    ``charm`` is -d(delta)/dT per year the same way (it includes r*delta).
    """

    delta: FloatArray  # dV/dF
    gamma: FloatArray  # d2V/dF2
    vega: FloatArray  # dV/dsigma
    theta: FloatArray  # -dV/dT
    vanna: FloatArray  # d2V/dF dsigma
    volga: FloatArray  # d2V/dsigma2
    charm: FloatArray  # -d2V/dF dT: delta's change per year as time passes


def _flat(array: NDArray[_Scalar], shape: tuple[int, ...], size: int) -> NDArray[_Scalar]:
    """``array`` broadcast to ``shape`` as a one-dimensional array the kernels take as is.

    The kernels are compiled for C-contiguous, aligned, writable arrays; any other layout (a
    strided or read-only view, say) would compile another specialisation, so it is copied.
    """
    if array.shape != shape:
        if array.ndim == 0:
            filled = np.empty(size, dtype=array.dtype)
            filled.fill(array)
            return filled
        array = np.broadcast_to(array, shape)
    flat = array.reshape(-1)
    flags = flat.flags
    if flags.c_contiguous and flags.aligned and flags.writeable:
        return flat
    return flat.copy()


def _flatten(
    values: tuple[ArrayLike, ...], is_call: ArrayLike
) -> tuple[tuple[int, ...], list[FloatArray], BoolArray]:
    """The broadcast shape and the inputs as flat float64 arrays and a flat bool array.

    Where an input already is one (of the broadcast shape), it is passed on, not copied: the
    kernels do not write into their inputs.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    calls = np.asarray(is_call, dtype=np.bool_)
    shapes = {a.shape for a in arrays}
    shapes.add(calls.shape)
    shapes.discard(())
    if len(shapes) > 1:
        shape = np.broadcast_shapes(*shapes)
    else:
        shape = shapes.pop() if shapes else ()
    size = math.prod(shape)
    return shape, [_flat(a, shape, size) for a in arrays], _flat(calls, shape, size)


def price(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 value exp(-rT) * E[payoff] of a European option on the forward F.

    Inputs broadcast against each other. T <= 0 or sigma == 0 give the discounted intrinsic
    value (T < 0 counts as T = 0). NaN where F or K is not positive, sigma is negative or
    anything is not finite.
    """
    shape, (f, k, t, rr, sig), calls = _flatten((F, K, T, r, sigma), is_call)
    value = np.empty(f.size)
    kernels.prices(f, k, t, rr, sig, calls, value)
    return value.reshape(shape)


def greeks(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> Greeks:
    """Analytic Black-76 greeks; see ``Greeks`` for the units.

    At T <= 0 or sigma == 0 the option is its intrinsic value: delta is the discounted step
    (+-1 in the money, 0 out of it, +-0.5 exactly at the money), theta is r*V while T > 0
    (pure discounting) and 0 once expired, charm likewise r*delta and 0, and gamma, vega,
    vanna and volga are 0. Where the density underflows, gamma, vega, vanna and volga are 0
    too (charm keeps its r*delta). NaN where ``price`` is.
    """
    shape, (f, k, t, rr, sig), calls = _flatten((F, K, T, r, sigma), is_call)
    out = np.empty((7, f.size))
    kernels.greeks(f, k, t, rr, sig, calls, out)
    delta, gamma, vega, theta, vanna, volga, charm = (row.reshape(shape) for row in out)
    return Greeks(
        delta=delta, gamma=gamma, vega=vega, theta=theta, vanna=vanna, volga=volga, charm=charm
    )


def implied_vol_with_reason(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: ArrayLike, F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, is_call: ArrayLike
) -> tuple[FloatArray, NDArray[np.int8]]:
    """Black-76 implied volatility (decimal) and an ``IVReason`` code per element.

    The volatility is NaN unless the reason is OK. A price exactly at the discounted
    intrinsic value gives 0.0 (OK), as does a positive time value too small to be a normal
    double once divided by sqrt(F*K) and the discount factor. Jaeckel's "Let's Be Rational"
    (2015): a rational-cubic initial guess and two Householder steps of order 3 (see
    ``black76_kernels``).
    """
    shape, (p, f, k, t, rr), calls = _flatten((price, F, K, T, r), is_call)
    vol = np.empty(p.size)
    reason = np.empty(p.size, dtype=np.int8)
    kernels.implied_vols(p, f, k, t, rr, calls, vol, reason)
    return vol.reshape(shape), reason.reshape(shape)


def implied_vol(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: ArrayLike, F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 implied volatility (decimal); NaN where no volatility reproduces the price.

    See ``implied_vol_with_reason`` for why an element is NaN.
    """
    return implied_vol_with_reason(price, F, K, T, r, is_call)[0]
