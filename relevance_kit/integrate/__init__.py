"""Search integration of predicted relevance: simulation, modes, A/B statistics."""
