"""Computational graphs: the course's multiply and add nodes, and a small scalar autodiff.

The course's shopping example: 2 apples at 100 each, with 10% tax::

    mul_apple, mul_tax = MulLayer(), MulLayer()
    price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)     # 220
    dapple_total, dtax = mul_tax.backward(1)                    # 1.1, 200
    dapple, dapple_num = mul_apple.backward(dapple_total)       # 2.2, 110

``Value`` builds the graph as you compute and back-propagates through it by itself (after
Karpathy's micrograd): every operation is made of a few primitives (add, mul, pow, exp, log,
relu), each of which knows its local derivative; ``backward()`` visits the nodes in reverse
topological order and adds (``+=``) each node's contribution to its inputs' gradients, so a
value used twice receives both::

    w, x, b = Value(-2.0), Value(5.0), Value(3.0)
    f = w * x + b          # Value(-7.0)
    f.backward()
    w.grad, x.grad, b.grad # (5.0, -2.0, 1.0)
"""

import math
import numbers

import numpy as np

from .._checks import check_real
from ..errors import InvalidTypeError, InvalidValueError, StateError

__all__ = ["AddLayer", "MulLayer", "Value"]


class MulLayer:
    """out = x * y. ``backward(dout)`` returns (dout * y, dout * x): each input's gradient is
    the upstream gradient times the other input, so forward keeps both inputs."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x = x
        self.y = y
        return x * y

    def backward(self, dout):
        if self.x is None:
            raise StateError("MulLayer.backward called before forward")
        dx = dout * self.y
        dy = dout * self.x
        return dx, dy

    def __repr__(self):
        return "MulLayer()"


class AddLayer:
    """out = x + y. ``backward(dout)`` returns (dout, dout): addition passes the upstream
    gradient on unchanged, so forward needs to keep nothing."""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout, dout

    def __repr__(self):
        return "AddLayer()"


class Value:
    """A scalar that remembers how it was computed, for reverse-mode differentiation.

    ``data`` is the value (float), ``grad`` d(output)/d(this value), filled by ``backward()``
    on the output. Supports +, -, *, / with other Values or plain numbers, ``** number``,
    ``exp``, ``log``, ``relu``, ``sigmoid`` and ``tanh``.
    """

    __slots__ = ("data", "grad", "_backward", "_prev", "_op")

    def __init__(self, data, _children=(), _op=""):
        self.data = check_real(data, "Value data", finite=False)
        self.grad = 0.0
        self._backward = lambda: None  # adds this node's gradient into its inputs' .grad
        self._prev = tuple(_children)
        self._op = _op

    @staticmethod
    def _wrap(other):
        if isinstance(other, Value):
            return other
        if isinstance(other, (bool, np.bool_)) or not isinstance(other, (numbers.Real, np.number)):
            return None
        return Value(other)

    # -- primitives: each sets its local derivative ------------------------------------------
    def __add__(self, other):
        other = self._wrap(other)
        if other is None:
            return NotImplemented
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        if other is None:
            return NotImplemented
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent):
        if isinstance(exponent, Value):
            raise InvalidTypeError("Value ** Value is not supported; the exponent must be a number")
        if self._wrap(exponent) is None:
            return NotImplemented
        n = float(exponent)
        result = self.data**n
        if isinstance(result, complex):
            raise InvalidValueError(f"{self.data} ** {n} is not a real number")
        out = Value(result, (self,), f"**{n:g}")

        def _backward():
            self.grad += n * self.data ** (n - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self):
        if self.data <= 0:
            raise InvalidValueError(f"log of a non-positive value: {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    # -- built from the primitives: backward needs nothing new -----------------------------
    def sigmoid(self):
        """1 / (1 + exp(-x)); for x < 0 the equal exp(x) / (1 + exp(x)), so exp never
        overflows."""
        if self.data >= 0:
            return (1 + (-self).exp()) ** -1
        e = self.exp()
        return e * (1 + e) ** -1

    def tanh(self):
        """(1 - exp(-2x)) / (1 + exp(-2x)); for x < 0 the equal (exp(2x) - 1) / (exp(2x) + 1)."""
        if self.data >= 0:
            e = (-2 * self).exp()
            return (1 - e) * (1 + e) ** -1
        e = (2 * self).exp()
        return (e - 1) * (e + 1) ** -1

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        other = self._wrap(other)
        if other is None:
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):
        return -self + other

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        other = self._wrap(other)
        if other is None:
            return NotImplemented
        return self * other**-1

    def __rtruediv__(self, other):
        return self**-1 * other

    # -- reverse pass -----------------------------------------------------------------------
    def backward(self):
        """Set this node's grad to 1 and fill every node it depends on with d(self)/d(node).

        Gradients accumulate: call ``zero_grad()`` before a second backward through the same
        nodes.
        """
        order, seen = [], set()
        stack = [(self, False)]
        while stack:  # iterative depth-first search: deep graphs do not hit the recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def zero_grad(self):
        """Set grad to 0 on this node and every node it depends on."""
        stack, seen = [self], set()
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                node.grad = 0.0
                stack.extend(node._prev)

    def __float__(self):
        return self.data

    def __repr__(self):
        return f"Value(data={self.data:g}, grad={self.grad:g})"
