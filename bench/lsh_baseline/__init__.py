"""The hand-written near-duplicate finder the app used before its vector index (issue 15).

Kept only as the baseline that bench/vector_index.py measures the index against: random-
hyperplane LSH over 64-d sketches, then an exact check of the candidate pairs.
"""
