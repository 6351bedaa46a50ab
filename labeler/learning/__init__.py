"""The learning layer: numpy and scikit-learn only, no Flask, no database, no TensorFlow.

Query strategies (``strategies``, ``clustering``), heads (``heads``, saved as plain arrays
by ``head_store``), label quality (``label_quality``), near-duplicates (``duplicates``,
``lsh``), the 2-D layout of the map (``projection``) and the simulation (``simulation``).
Everything here works on arrays and is tested on hand-made ones; import-linter keeps it
free of Flask, SQLAlchemy and TensorFlow (pyproject.toml).
"""
