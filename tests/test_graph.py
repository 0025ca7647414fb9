"""fastnn.graph: the course's shopping graphs and the scalar autodiff ``Value``."""

import math

import numpy as np
import pytest

from fastnn import numerical_gradient
from fastnn.graph import AddLayer, MulLayer, Value


def test_buy_apples():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple, mul_tax = MulLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    price = mul_tax.forward(apple_price, tax)
    assert price == pytest.approx(220)

    dapple_price, dtax = mul_tax.backward(1)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dtax == pytest.approx(200)


def test_buy_apples_and_oranges():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple, mul_orange, add_fruit, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    all_price = add_fruit.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)
    assert price == pytest.approx(715)

    dall_price, dtax = mul_tax.backward(1)
    dapple_price, dorange_price = add_fruit.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dorange == pytest.approx(3.3)
    assert dorange_num == pytest.approx(165)
    assert dtax == pytest.approx(650)


def test_mul_layer_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        MulLayer().backward(1.0)


def test_layers_work_on_arrays():
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    mul = MulLayer()
    np.testing.assert_array_equal(mul.forward(x, y), [3.0, 8.0])
    dx, dy = mul.backward(np.ones(2))
    np.testing.assert_array_equal(dx, y)
    np.testing.assert_array_equal(dy, x)


def test_value_affine():
    w, x, b = Value(-2.0), Value(5.0), Value(3.0)
    f = w * x + b
    assert f.data == -7.0
    f.backward()
    assert (w.grad, x.grad, b.grad) == (5.0, -2.0, 1.0)


def test_value_shopping():
    apple, apple_num, orange, orange_num, tax = map(Value, (100, 2, 150, 3, 1.1))
    price = (apple * apple_num + orange * orange_num) * tax
    price.backward()
    assert price.data == pytest.approx(715)
    for v, want in [(apple, 2.2), (apple_num, 110), (orange, 3.3), (orange_num, 165), (tax, 650)]:
        assert v.grad == pytest.approx(want)


def test_node_used_twice_accumulates():
    x = Value(3.0)
    y = x * x
    y.backward()
    assert x.grad == 6.0  # 2x, not x: both uses contribute
    z = Value(2.0)
    w = z + z + z
    w.backward()
    assert z.grad == 3.0


def test_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = Value(3.0)
    y = x * 2
    y.backward()
    y.backward()
    assert x.grad == 4.0
    y.zero_grad()
    assert x.grad == 0.0 and y.grad == 0.0
    y.backward()
    assert x.grad == 2.0


def test_plain_numbers_on_either_side():
    x = Value(4.0)
    cases = {
        "radd": (2 + x, 6.0, 1.0),
        "rmul": (3 * x, 12.0, 3.0),
        "sub": (x - 1, 3.0, 1.0),
        "rsub": (1 - x, -3.0, -1.0),
        "neg": (-x, -4.0, -1.0),
        "truediv": (x / 2, 2.0, 0.5),
        "rtruediv": (2 / x, 0.5, -2 / 16),
        "pow": (x**3, 64.0, 48.0),
    }
    for name, (out, value, grad) in cases.items():
        x.grad = 0.0
        out.backward()
        assert out.data == pytest.approx(value), name
        assert x.grad == pytest.approx(grad), name


@pytest.mark.parametrize("z", [-30.0, -2.0, -0.5, 0.0, 0.7, 3.0, 30.0])
def test_sigmoid_and_tanh_from_primitives(z):
    s = 1 / (1 + math.exp(-z))
    e = math.exp(-abs(z))
    dsigmoid = e / (1 + e) ** 2  # s (1 - s) without the cancellation in 1 - s
    x = Value(z)
    y = x.sigmoid()
    y.backward()
    assert y.data == pytest.approx(s, rel=1e-12, abs=1e-300)
    assert x.grad == pytest.approx(dsigmoid, rel=1e-9, abs=1e-300)
    x = Value(z)
    y = x.tanh()
    y.backward()
    assert y.data == pytest.approx(math.tanh(z), rel=1e-12, abs=1e-300)
    assert x.grad == pytest.approx(1 / math.cosh(z) ** 2, rel=1e-9, abs=1e-300)


def test_course_derivatives_at_zero():
    x = Value(0.0)
    x.sigmoid().backward()
    assert x.grad == pytest.approx(0.25)
    x = Value(0.0)
    x.tanh().backward()
    assert x.grad == pytest.approx(1.0)


def test_sigmoid_and_tanh_do_not_overflow():
    for z in (-1000.0, 1000.0):
        for op in ("sigmoid", "tanh"):
            x = Value(z)
            y = getattr(x, op)()
            y.backward()
            assert math.isfinite(y.data) and x.grad == 0.0


def test_relu():
    for z, value, grad in [(-1.5, 0.0, 0.0), (0.0, 0.0, 0.0), (2.5, 2.5, 1.0)]:
        x = Value(z)
        y = x.relu()
        y.backward()
        assert (y.data, x.grad) == (value, grad)


# Composite expressions of three inputs, written once for Value and once for float64 arrays.
def _expr_a(a, b, c, ops):
    return (a * b + ops.exp(c) * 0.5 - ops.log(a**2 + 1)) * ops.sigmoid(b - c) / (1 + c**2)


def _expr_b(a, b, c, ops):
    return ops.tanh(a * c) * ops.relu(b + 3) + (a - b) ** 3 / 7 - 2 / (1 + ops.exp(a * b))


def _expr_c(a, b, c, ops):
    h = ops.tanh(a + b)  # h used three times
    return h * h * c + ops.sigmoid(h * c) + ops.log(1 + h**2) + ops.relu(c - a) * h


class _ValueOps:
    sigmoid = staticmethod(lambda v: v.sigmoid())
    tanh = staticmethod(lambda v: v.tanh())
    relu = staticmethod(lambda v: v.relu())
    exp = staticmethod(lambda v: v.exp())
    log = staticmethod(lambda v: v.log())


class _NumpyOps:
    sigmoid = staticmethod(lambda v: 1 / (1 + np.exp(-v)))
    tanh = staticmethod(np.tanh)
    relu = staticmethod(lambda v: np.maximum(v, 0))
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)


@pytest.mark.parametrize("expr", [_expr_a, _expr_b, _expr_c])
def test_value_gradients_match_numerical_gradient(expr, rng):
    for _ in range(5):
        point = rng.uniform(-2, 2, 3)
        # Keep away from ReLU's kink, where central differences straddle two slopes.
        if abs(point[1] + 3) < 1e-3 or abs(point[2] - point[0]) < 1e-3:
            continue
        inputs = [Value(v) for v in point]
        out = expr(*inputs, _ValueOps)
        out.backward()

        def f(p):
            return expr(*p, _NumpyOps)

        num = numerical_gradient(f, point.copy())
        np.testing.assert_allclose([v.grad for v in inputs], num, rtol=1e-6, atol=1e-8)
        assert out.data == pytest.approx(float(f(point)), rel=1e-12)


def test_value_rejects_bad_input():
    with pytest.raises(TypeError, match="real number"):
        Value("1")
    with pytest.raises(TypeError, match="real number"):
        Value(True)
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(TypeError, match="exponent must be a number"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="non-positive"):
        Value(0.0).log()
    with pytest.raises(ValueError, match="not a real number"):
        Value(-2.0) ** 0.5
