"""The teacher tier: a small (vision-)language model or cross-encoder fine-tuned on the
annotator's labels (Lightning), exported, and scored in one forward pass per pair to give
soft labels for the student (hf, OpenAI-compatible server or vLLM backends)."""
