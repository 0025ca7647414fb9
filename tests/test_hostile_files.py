"""Files from strangers cost little to refuse (issue 14, items 8-10): ``load``, resume and
``read_idx`` check what a file declares against what it holds before they allocate or
inflate anything, and every header against its schema before they use it.

The crafted files that used to cost gigabytes are loaded in a fresh interpreter each, which
reports its peak resident memory: it must stay within ``BOUND_MB`` of the interpreter's own
after importing fastnn. A random fuzz of model and checkpoint headers asserts a clear
``ValueError``/``TypeError`` or a correct load, never anything else.
"""

import io
import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn as fn
from fastnn import files

BOUND_MB = 150  # the bombs below would take 576 MB to several GB


def npz(path, header, arrays, deflate=()):
    """Write a fastnn-like archive: the JSON ``header`` and ``arrays``; members named in
    ``deflate`` are compressed."""
    with zipfile.ZipFile(path, "w") as z:
        text = header if isinstance(header, str) else json.dumps(header)
        members = {"fastnn.json": np.array(text), **arrays}
        for key, value in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            kind = zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED
            z.writestr(key + ".npy", buf.getvalue(), compress_type=kind)
    return path


def model_header(spec, dtype="float32", kind="model"):
    return {"format": "fastnn", "version": 1, "kind": kind, "dtype": dtype, "model": spec}


def linear(n_in, n_out):
    return {"class": "Linear", "config": {"in_features": n_in, "out_features": n_out}}


def zero_bomb(path, key, shape, header, extra=None):
    """A member ``key`` declaring a float32 array of ``shape`` whose data is zeros, deflated:
    a small file that inflates to 4 * prod(shape) bytes (written in chunks)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array(json.dumps(header)), allow_pickle=False)
        z.writestr("fastnn.json.npy", buf.getvalue())
        for name, value in (extra or {}).items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, allow_pickle=False)
            z.writestr(name + ".npy", buf.getvalue())
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            head, {"descr": "<f4", "fortran_order": False, "shape": shape}
        )
        with z.open(key + ".npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())
            chunk = bytes(1 << 22)
            left = 4 * int(np.prod(shape))
            while left:
                f.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
    return path


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    d = tmp_path_factory.mktemp("crafted")
    small = {"model/weight": np.zeros((2, 2), np.float32), "model/bias": np.zeros(2, np.float32)}
    cases = {
        # 8. the header declares what the arrays do not hold
        "Linear 12000x12000": npz(d / "big.npz", model_header(linear(12000, 12000)), small),
        "Linear 10**6x10**6": npz(d / "huge.npz", model_header(linear(10**6, 10**6)), small),
        "MLP [10**6, 10**6]": npz(
            d / "mlp.npz",
            model_header({"class": "MLP", "config": {"sizes": [10**6, 10**6]}}),
            {"model/0.weight": np.zeros((2, 2), np.float32), "model/0.bias": np.zeros(2)},
        ),
        # 9. decompression bombs: an unused member, and a declared-size one
        "unused deflated member": zero_bomb(
            d / "unused.npz", "junk", (150_000_000,), model_header(linear(2, 2))
        ),
        "deflated 12000x12000 weight": zero_bomb(
            d / "weight.npz",
            "model/weight",
            (12000, 12000),
            model_header(linear(12000, 12000)),
            {"model/bias": np.zeros(12000, np.float32)},
        ),
        # 10. deep headers
        "2000-deep Sequential": npz(
            d / "deep.npz",
            json.dumps(model_header(None))[:-5]  # ends with "null}": the model goes there
            + '{"class": "Sequential", "layers": [' * 2000
            + "]}" * 2000
            + "}",
            {},
        ),
    }
    # A gzip IDX file of 2 GB of zeros that declares 2 GB and trails one byte (1 MB on disk).
    import gzip

    idx = d / "bomb-idx3-ubyte.gz"
    with gzip.open(idx, "wb", compresslevel=9) as f:
        f.write(b"\x00\x00\x08\x01" + (2_000_000_000).to_bytes(4, "big"))
        chunk = bytes(1 << 24)
        for _ in range(2_000_000_000 // len(chunk)):
            f.write(chunk)
        f.write(bytes(2_000_000_000 % len(chunk) + 1))
    cases["2 GB gzip IDX"] = idx
    return cases


PROBE = """
import resource, sys
import fastnn as fn
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kind, path = sys.argv[1], sys.argv[2]
try:
    fn.datasets.read_idx(path) if kind == "idx" else fn.load(path)
    outcome = "loaded"
except (ValueError, TypeError) as e:
    outcome = f"refused: {type(e).__name__}: {e}"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{(after - before) / 1024:.1f} MB")
print(outcome)
"""


@pytest.mark.parametrize(
    "case, message",
    [
        ("Linear 12000x12000", "weight is stored with shape (2, 2), the architecture declares"),
        ("Linear 10**6x10**6", "the architecture declares (1000000, 1000000)"),
        ("MLP [10**6, 10**6]", "the architecture declares (1000000, 1000000)"),
        ("unused deflated member", "unknown member 'junk'"),
        ("deflated 12000x12000 weight", "would inflate from"),
        ("2000-deep Sequential", "nested too deeply"),
        ("2 GB gzip IDX", "more than the file can hold"),
    ],
)
def test_crafted_files_are_refused_cheaply(crafted, case, message):
    kind = "idx" if "IDX" in case else "model"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE), kind, str(crafted[case])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    grown, outcome = proc.stdout.splitlines()[:2]
    assert outcome.startswith("refused: ValueError") or outcome.startswith("refused:"), outcome
    assert message in outcome
    assert float(grown.split()[0]) < BOUND_MB, f"{case}: peak memory grew {grown}"


# -- checkpoints whose training state is odd ----------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt.npz"
    x, y = np.ones((12, 4), np.float32), np.arange(12) % 3
    model = fn.MLP([4, 5, 3], dropout=0.1, seed=0)
    opt = fn.optim.Adam(model.parameters())
    save = [fn.callbacks.ModelCheckpoint(path)]
    fn.fit(model, x, y, optimizer=opt, epochs=2, batch_size=4, callbacks=save, seed=0, verbose=0)
    return path


def _with_training(src, dst, change):
    """A copy of checkpoint ``src`` whose header's training state went through ``change``."""
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    header = json.loads(str(np.load(io.BytesIO(members["fastnn.json.npy"]))))
    change(header["training"])
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(json.dumps(header)))
    members["fastnn.json.npy"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return dst


def _resume(path):
    x, y = np.ones((12, 4), np.float32), np.arange(12) % 3
    model = fn.MLP([4, 5, 3], dropout=0.1, seed=0)
    opt = fn.optim.Adam(model.parameters())
    return fn.fit(model, x, y, optimizer=opt, epochs=4, batch_size=4, verbose=0, resume=path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("shuffle_rng"), "shuffle_rng must be dict, got None"),
        (lambda t: t.update(shuffle_rng=None), "shuffle_rng must be dict, got None"),
        (lambda t: t.update(epoch=-5), "epoch -5 is not within 0..2"),
        (lambda t: t.update(epoch="2"), "epoch must be int"),
        (lambda t: t.update(epoch=1), "history['loss'] must list one figure per epoch (1)"),
        (lambda t: t.pop("seed"), "seed must be int, got None"),
        (lambda t: t.update(dropout_rngs=[]), "expected 1 dropout generator states"),
        (lambda t: t["shuffle_rng"].update(state="x"), "random generator state is invalid"),
        (lambda t: t.update(callbacks=[1]), "each callback must be an object"),
        (lambda t: t.update(history={"loss": ["a", "b"]}), "must hold numbers"),
    ],
)
def test_odd_training_states_are_refused_before_use(checkpoint, tmp_path, change, message):
    bad = _with_training(checkpoint, tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=re_escape(message)):
        _resume(bad)


def re_escape(text):
    import re

    return re.escape(text)


@pytest.mark.parametrize(
    "member",
    ["model/0.weight", "model/2.bias", "optimizer/exp_avg", "optimizer/exp_avg_sq"],
)
def test_a_checkpoint_missing_a_member_is_refused(checkpoint, tmp_path, member):
    # Without its optimizer/exp_avg a checkpoint resumed with Adam's first moment at zero.
    with zipfile.ZipFile(checkpoint) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    del members[member + ".npy"]
    with zipfile.ZipFile(tmp_path / "lost.npz", "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    with pytest.raises(fn.errors.FileFormatError, match="arrays differ|lacks the state"):
        _resume(tmp_path / "lost.npz")


def test_a_good_checkpoint_still_resumes(checkpoint):
    assert _resume(checkpoint).epochs == 4


# -- fuzz: random headers and arrays ----------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _valid_header():
    model = fn.Sequential(fn.Linear(3, 4, rng=0), fn.BatchNorm(4), fn.Dropout(0.2, rng=0))
    return files._model_header(model), {f"model/{k}": v for k, v in model.named_state()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_model_files_load_or_are_refused(tmp_path, data):
    header, arrays = _valid_header()
    # Replace one value somewhere in the header with random JSON, and maybe one array's shape.
    path = data.draw(st.sampled_from(_paths(header)))
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(JSON)
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(arrays)))
        shape = data.draw(st.lists(st.integers(0, 6), max_size=3))
        arrays[key] = np.zeros(shape, data.draw(st.sampled_from(["f4", "f8", "i8", "u1"])))
    target = npz(tmp_path / "fuzz.npz", header, arrays)
    try:
        model = fn.load(target)
    except (ValueError, TypeError) as e:
        assert isinstance(e, fn.errors.FastnnError), f"{type(e).__name__}: {e}"
    else:
        assert isinstance(model, fn.Module)
        model.eval().predict(np.ones((2, 3), np.float32))  # a loaded model runs


def _paths(node, prefix=()):
    """Every path of keys and indices to a value inside the JSON ``node``."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


# -- fuzz under a memory bound: crafted model and checkpoint files, loaded in a subprocess -----
SIZES = [0, -1, 1, 7, 3000, 10**6, 10**9, 10**12, 2**62]
FLOATS = [0.0, -1.0, 0.5, 1e300, float("nan"), float("inf")]


def _random_json(rng, depth=0):
    kind = int(rng.integers(0, 8 if depth < 2 else 6))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(2))
    if kind == 2:
        return int(rng.choice(SIZES))
    if kind == 3:
        return float(rng.choice(FLOATS))
    if kind == 4:
        return str(rng.choice(["", "relu", "Linear", "float64", "x" * 100_000]))
    if kind == 5:
        return [int(rng.choice(SIZES)) for _ in range(int(rng.integers(0, 4)))]
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    return {str(rng.choice(["class", "config", "a"])): _random_json(rng, depth + 1)}


def _zeros_deflated(path, key, nbytes):
    """An archive with one deflated member ``key``: a float32 .npy of ``nbytes`` of zeros
    (about 230 times smaller on disk). Other members are appended to a copy of it."""
    head = io.BytesIO()
    shape = (nbytes // 4,)
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open(key + ".npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())
            chunk = bytes(1 << 22)
            for start in range(0, nbytes, len(chunk)):
                f.write(chunk[: min(len(chunk), nbytes - start)])
    return path


def _fuzz_case(rng, base, templates, path):
    """One crafted file at ``path`` from ``base`` (header, arrays): 1-3 random mutations among
    sizes, array shapes and dtypes, JSON types, nesting depth, deflated members, decompression
    bombs, missing and extra members. Returns the mutations' names ("drop" is "drop member"
    when a member the format needs was dropped, "depth" is "depth N" when the model is N
    levels down)."""
    header, arrays = json.loads(json.dumps(base[0])), dict(base[1])
    done, deflate, depth, bomb = [], set(), 0, None
    for _ in range(int(rng.integers(1, 4))):
        what = str(
            rng.choice(["size", "array", "json", "depth", "deflate", "bomb", "drop", "extra"])
        )
        done.append(what)
        if what in ("size", "json"):
            paths = [p for p in _paths(header) if what == "json" or _is_size(header, p)]
            path_ = paths[int(rng.integers(len(paths)))]
            node = header
            for key in path_[:-1]:
                node = node[key]
            node[path_[-1]] = int(rng.choice(SIZES)) if what == "size" else _random_json(rng)
        elif what == "array" and arrays:
            key = str(rng.choice(sorted(arrays)))
            shape = tuple(int(rng.choice([0, 1, 2, 5, 3000])) for _ in range(rng.integers(0, 3)))
            dtype = str(rng.choice(["f4", "f8", "i8", "u1", "?", "U3", "c8"]))
            arrays[key] = np.zeros(shape if np.prod(shape) < 10**7 else (2,), dtype)
        elif what == "depth":
            depth = int(rng.choice([2, 50, 500, 5000]))
        elif what == "deflate":
            deflate = set(arrays)
        elif what == "bomb":
            # 256 MB of zeros, as a member the format names or as one it does not.
            bomb = str(rng.choice(sorted(arrays) + ["junk"])) if arrays else "junk"
            arrays.pop(bomb, None)
        elif what == "drop" and arrays:
            key = str(rng.choice(sorted(arrays)))
            arrays.pop(key)
            done[-1] = "drop member" if key in base[1] else "drop"
        elif what == "extra":
            arrays[str(rng.choice(["junk", "model/9.weight", "optimizer/x"]))] = np.zeros(3)
    text = json.dumps(header)
    if depth and isinstance(header["model"], dict):
        done[done.index("depth")] = f"depth {depth}"
        spec = json.dumps(header["model"])
        text = text.replace(
            spec, '{"class": "Sequential", "layers": [' * depth + spec + "]}" * depth, 1
        )
    if bomb is not None:
        if bomb not in templates:
            templates[bomb] = _zeros_deflated(
                path.with_name(f"template-{len(templates)}.npz"), bomb, 256 << 20
            )
        path.write_bytes(templates[bomb].read_bytes())
    with zipfile.ZipFile(path, "a" if bomb is not None else "w") as z:
        for key, value in {"fastnn.json": np.array(text), **arrays}.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            kind = zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED
            z.writestr(key + ".npy", buf.getvalue(), compress_type=kind)
    return done


def _is_size(header, path):
    node = header
    for key in path:
        node = node[key]
    return isinstance(node, int) and not isinstance(node, bool)


FUZZ = """
import resource, sys
import numpy as np
import fastnn as fn

x, y = np.ones((12, 4), np.float32), np.arange(12) % 3


def resume(path):
    model = fn.MLP([4, 5, 3], dropout=0.1, seed=0)
    opt = fn.optim.Adam(model.parameters())
    fn.fit(model, x, y, optimizer=opt, epochs=4, batch_size=4, verbose=0, resume=path)
    model.eval().predict(x)


def load(path):
    model = fn.load(path)
    width = model.io_widths()[0]
    model.eval().predict(np.ones((2, width if isinstance(width, int) else 4), np.float32))


# Warm up (imports, the kernels' compilation) on the good files, then measure from here.
resume(sys.argv[1])
load(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for line in sys.stdin:
    kind, path = line.split()
    try:
        (resume if kind == "checkpoint" else load)(path)
        outcome = "ok"
    except fn.errors.FastnnError as e:
        outcome = f"refused: {type(e).__name__}: {str(e)[:200]!r}"
    except BaseException as e:
        outcome = f"WRONG: {type(e).__name__}: {str(e)[:200]!r}"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"{grown:.1f} {path} {outcome}", flush=True)
"""


def _archive(path):
    with zipfile.ZipFile(path) as z:
        members = {i.filename[: -len(".npy")]: np.load(io.BytesIO(z.read(i))) for i in z.infolist()}
    return json.loads(str(members.pop("fastnn.json"))), members


def test_fuzzed_files_cost_little_and_end_cleanly(checkpoint, tmp_path):
    # 240 files, a fixed seed so a failure reproduces; every file is read in one interpreter
    # (peak resident memory only grows, so its growth bounds each file's) after warming up.
    good_model = tmp_path / "good.npz"
    model = fn.MLP([4, 5, 3], dropout=0.1, seed=0)
    fn.save(model, good_model)
    bases = {"checkpoint": _archive(checkpoint), "model": _archive(good_model)}
    rng = np.random.default_rng(14)
    templates, cases, kinds, mutations = {}, [], {}, {}
    for i in range(240):
        kind = "checkpoint" if i % 3 == 0 else "model"
        path = tmp_path / f"fuzz-{i}-{kind}.npz"
        mutations[str(path)] = _fuzz_case(rng, bases[kind], templates, path)
        for what in mutations[str(path)]:
            what = what.split()[0]
            kinds[what] = kinds.get(what, 0) + 1
        cases.append(f"{kind} {path}\n")
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, str(checkpoint), str(good_model)],
        input="".join(cases),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(cases)
    wrong = [line for line in lines if " WRONG: " in line]
    assert not wrong, "\n".join(wrong[:10])
    grown = [float(line.split()[0]) for line in lines]
    over = [line for line in lines if float(line.split()[0]) >= BOUND_MB]
    assert max(grown) < BOUND_MB, f"peak memory grew past {BOUND_MB} MB first at:\n{over[0]}"
    # The fuzz did its work: every mutation ran, many files were refused, some loaded.
    assert all(kinds.get(k, 0) >= 10 for k in ["size", "json", "depth", "bomb", "array"]), kinds
    refused = sum(" refused: " in line for line in lines)
    assert 100 < refused < len(lines), (refused, len(lines))
    # What must happen: a file only compressed loads; one with a bomb, a missing member or a
    # model nested deeper than the format allows is refused.
    for line, case in zip(lines, cases, strict=True):
        done = mutations[case.split()[1]]
        if set(done) == {"deflate"}:
            assert line.endswith(" ok"), (done, line)
        if {"bomb", "drop member", "depth 50", "depth 500", "depth 5000"} & set(done):
            assert " refused: " in line, (done, line)
