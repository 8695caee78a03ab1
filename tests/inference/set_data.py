"""Shared by the NPE tests on set-valued data: θ ~ N(0, 1), x = a set of 2..6 measurements θ + N(0, σ²)
padded to 6 members with a mask, and an NPE with a DeepSet embedding trained on 1000 such sets."""
import numpy as np

from astrobayes.estimators.embeddings import DeepSetEmbedding
from astrobayes.inference.npe import NPE
from astrobayes.inference.priors import JointPrior, Normal


def set_valued_posterior(sigma: float, epochs: int):
    """(posterior, values (1000, 6, 1), mask (1000, 6)) for the set-valued model above."""
    rng = np.random.default_rng(0)
    prior = JointPrior([Normal(0.0, 1.0, name="mu")])
    theta = prior.sample(1000, seed=0).numpy()
    values = theta[:, None, :] + sigma * rng.normal(size=(1000, 6, 1))
    mask = np.arange(6)[None] < rng.integers(2, 7, size=1000)[:, None]
    npe = NPE(prior, density="mdn", embedding=DeepSetEmbedding(1, output_dim=8, hidden=(16,)), n_components=1,
              hidden=(16,))
    return npe.append_simulations(theta, (values, mask)).train(epochs=epochs, progress=False), values, mask
