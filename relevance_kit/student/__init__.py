"""The student tier: a two-tower BERT distilled from the teacher, exported for live search
(ONNX query encoder + a precomputed listing index) and served in-process or over HTTP."""
