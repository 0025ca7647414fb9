"""asv benchmarks for fastnn (see asv.conf.json at the repository root)."""
