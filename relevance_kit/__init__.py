"""relevance-kit: a config-driven cascade that judges how well a listing matches a buyer's query."""

__version__ = "0.1.0"
