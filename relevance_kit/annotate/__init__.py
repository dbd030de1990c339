"""The annotator tier: labels for the annotate pool, as judgment rows (schemas.JUDGMENT_SCHEMA).

Whatever the backend, the stage's output contract is the same judgments parquet, so the
teacher never needs to know who labelled its training data.
"""
