"""The learning layer: numpy and scikit-learn only, no Flask, no database, no TensorFlow.

Query strategies (``strategies``, ``clustering``), heads (``heads``, saved as plain arrays
by ``head_store``), label quality (``label_quality``), near-duplicates (``duplicates``,
``lsh``), the 2-D layout of the map (``projection``), the simulation (``simulation``) and
multi-label (tag) learning (``tags`` and the ``tag_*`` modules).
Everything here works on arrays and is tested on hand-made ones; import-linter keeps it
free of Flask, SQLAlchemy and TensorFlow (pyproject.toml).
"""
