"""scikit-learn estimators over fastnn: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's ``MLPClassifier`` parameter names where the two overlap, so they drop
into pipelines, ``clone`` and grid searches:

    from fastnn.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0).fit(x, y)
    clf.predict_proba(x_test)   # (n, n_classes), columns in clf.classes_ order

Training is ``fastnn.fit`` on a ``fastnn.MLP`` (kept as ``model_``); its ``History`` is
``history_``. Needs the ``sklearn`` extra: ``pip install 'fastnn[sklearn]'``.
"""

try:
    import sklearn  # noqa: F401
except ImportError as e:
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install 'fastnn[sklearn]'") from e

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
