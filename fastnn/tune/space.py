"""Search spaces: the distributions hyperparameters are drawn from, and drawing them."""

import math

from .._checks import check_real
from ..errors import InvalidTypeError, InvalidValueError


class Uniform:
    """Values drawn uniformly from [lo, hi]; lo < hi."""

    log = False

    def __init__(self, lo, hi):
        self.lo = check_real(lo, f"{type(self).__name__} lo")
        self.hi = check_real(hi, f"{type(self).__name__} hi")
        if not self.lo < self.hi:
            raise InvalidValueError(
                f"invalid range {self.lo:g}:{self.hi:g}; expected lo < hi ({type(self).__name__})"
            )

    def _to_axis(self, v):  # the axis the draws are uniform on
        return v

    def _from_axis(self, u):
        return u

    def sample(self, rng):
        """One value, from ``rng`` (a numpy Generator)."""
        u = rng.uniform(self._to_axis(self.lo), self._to_axis(self.hi))
        # exp(log(lo)) may round just outside [lo, hi]: clip back.
        return float(min(max(self._from_axis(u), self.lo), self.hi))

    def narrow(self, values, margin=0.0):
        """The range min(values)..max(values), widened by ``margin`` times its width on each
        side (on the axis the draws are uniform on: log for ``LogUniform``) and clipped to this
        range. A single distinct value gives that value, fixed."""
        values = [float(v) for v in values]
        lo, hi = min(values), max(values)
        if lo == hi:
            return lo
        a, b = self._to_axis(lo), self._to_axis(hi)
        pad = margin * (b - a)
        lo = max(self.lo, self._from_axis(a - pad)) if pad else lo
        hi = min(self.hi, self._from_axis(b + pad)) if pad else hi
        return type(self)(lo, hi)

    def to_dict(self):
        return {"uniform": [self.lo, self.hi]}

    def __eq__(self, other):
        return type(other) is type(self) and (self.lo, self.hi) == (other.lo, other.hi)

    def __repr__(self):
        return f"{type(self).__name__}({self.lo:g}, {self.hi:g})"


class LogUniform(Uniform):
    """Values whose logarithm is uniform on [log lo, log hi]; 0 < lo < hi. For scales such as
    learning rates and weight decays: each decade gets the same share of the draws."""

    log = True

    def __init__(self, lo, hi):
        super().__init__(lo, hi)
        if self.lo <= 0:
            raise InvalidValueError(
                f"invalid range {self.lo:g}:{self.hi:g}; a log-uniform range needs 0 < lo < hi"
            )

    def _to_axis(self, v):
        return math.log(v)

    def _from_axis(self, u):
        return math.exp(u)

    def to_dict(self):
        return {"log_uniform": [self.lo, self.hi]}


class Choice:
    """One of ``options``, each equally likely."""

    def __init__(self, options):
        self.options = list(options)
        if not self.options:
            raise InvalidValueError("Choice needs at least one option")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def narrow(self, values, margin=0.0):
        """The options among ``values``, in their original order; a single one, fixed."""
        kept = [o for o in self.options if any(_same(o, v) for v in values)]
        return kept[0] if len(kept) == 1 else Choice(kept)

    def to_dict(self):
        return {"choice": list(self.options)}

    def __eq__(self, other):
        return type(other) is Choice and self.options == other.options

    def __repr__(self):
        return f"Choice({self.options!r})"


def _same(a, b):
    return (list(a) == list(b)) if isinstance(a, (list, tuple)) else a == b


DISTRIBUTIONS = (Uniform, Choice)  # LogUniform is a Uniform


def check_space(space):
    if not isinstance(space, dict):
        raise InvalidTypeError(f"space must be a dict of name -> range or value, got {type(space)}")
    for name in space:
        if not isinstance(name, str):
            raise InvalidTypeError(f"space keys must be parameter names (str), got {name!r}")
    return dict(space)


def sample(space, rng):
    """One set of parameters from ``space``: draws for the ranges, the fixed values as given.
    The draws are made in the space's key order."""
    return {k: v.sample(rng) if isinstance(v, DISTRIBUTIONS) else v for k, v in space.items()}


def space_to_dict(space):
    return {k: v.to_dict() if isinstance(v, DISTRIBUTIONS) else v for k, v in space.items()}


def format_value(v):
    """A parameter's value as table text: floats to 3 digits, lists as 100,100."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)
