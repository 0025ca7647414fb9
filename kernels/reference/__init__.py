"""Pure-NumPy twins of every kernel, same names and signatures: the tests' oracle and the
benchmarks' baseline. Written for clarity, not speed."""

from .activations import *  # noqa: F401,F403
from .affine import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .blas import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .fastexp import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .softmax_cross_entropy import *  # noqa: F401,F403
