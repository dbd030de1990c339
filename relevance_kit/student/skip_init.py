"""Start the similarity skip from the encoder's own relevance signal, calibrated.

Before training, the skip (logits = MLP + (u.v) w + c, the MLP's last layer at zero) is set
to a multinomial logistic regression of the training pairs' classes on the untrained towers'
similarity u.v, weighted as the training objective weights them (the pinned class weights,
and each class equally when sampling is balanced). The untrained student then is the
pretrained encoder's similarity, with its scale and label boundaries fitted on the training
targets (never on golden): training starts where the zero-shot baseline is, not from a
random head. Only the training pairs are read, under a forked RNG (a DataLoader draws its
seed from torch's): the run draws the random numbers a run without the skip draws.

| input       | shape / type                   | meaning                                       |
|-------------|--------------------------------|-----------------------------------------------|
| model       | TwoTowerStudent with a skip    | towers as initialised (pretrained encoder)    |
| loader      | DataLoader, sequential         | training pairs: `query`, `listing` tokens     |
| classes     | (n,) int, loader order         | each pair's class (hard label, else argmax)   |
| weights     | (K,) float                     | the loss's class weights, label order         |
| balanced    | bool                           | sampling draws each class equally often       |
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader

from relevance_kit.student.towers import TwoTowerStudent


@torch.no_grad()
def tower_similarities(model: TwoTowerStudent, loader: DataLoader) -> np.ndarray:
    """u.v of every pair the loader yields, in its order, with dropout off."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        out = [
            (model.query_tower(**b["query"]) * model.listing_tower(**b["listing"])).sum(dim=-1)
            for b in loader
        ]
    model.train(was_training)
    return torch.cat(out).numpy()


def init_similarity_skip(
    model: TwoTowerStudent,
    loader: DataLoader,
    classes: np.ndarray,
    weights: list[float],
    balanced: bool,
) -> dict[str, list[float]]:
    """Set the skip's (w, c) to the fitted regression; returns them for the run's metrics."""
    skip = model.head.skip
    if skip is None:
        raise ValueError("the student's head has no similarity skip (head.similarity_skip)")
    similarity = tower_similarities(model, loader)
    k = len(weights)
    present = np.unique(classes)
    fit = LogisticRegression(class_weight="balanced" if balanced else None).fit(
        similarity[:, None], classes, sample_weight=np.asarray(weights)[classes]
    )
    coef, intercept = fit.coef_[:, 0], fit.intercept_
    if len(present) == 2:  # sklearn's binary form: one row, the second class against the first
        coef, intercept = np.array([0.0, coef[0]]), np.array([0.0, intercept[0]])
    w = np.zeros(k, np.float32)
    c = np.full(k, -30.0, np.float32)  # a class absent from training stays (nearly) impossible
    w[present], c[present] = coef, intercept
    with torch.no_grad():
        skip.weight.copy_(torch.from_numpy(w))
        skip.bias.copy_(torch.from_numpy(c))
    return {"weight": w.tolist(), "bias": c.tolist()}
