"""Data: the IDX format, MNIST and Fashion-MNIST (with the embedded sample in ``mnist/``),
preprocessing, and data by name for the command line (``sources``)."""
