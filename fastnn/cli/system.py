"""``fastnn warmup`` and ``fastnn info``: compile the kernels ahead of time; say what fastnn
runs on."""

from ..warmup import cache_dir, info, warmup


def add_parsers(subparsers):
    p = subparsers.add_parser("warmup", help="compile every kernel into the cache ahead of time")
    p.set_defaults(run=warmup_cmd)
    p = subparsers.add_parser("info", help="versions, threads, BLAS and cache folders")
    p.set_defaults(run=info_cmd)


def warmup_cmd(args):
    seconds = warmup()
    print(f"compiled or loaded every kernel (float32 and float64) in {seconds:.1f} s")
    print(f"cache: {cache_dir()}")
    return 0


def info_cmd(args):
    rows = info()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
