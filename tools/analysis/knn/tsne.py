"""2-D t-SNE of probe features (scikit-learn's ``TSNE``) and its scatter plot."""
import os
import os.path as osp
from typing import Sequence, Tuple

import torch
from torch import nn


def tsne(features: torch.Tensor,
         perplexity: float = 30.0,
         num_iters: int = 750,
         seed: int = 0) -> torch.Tensor:
    """t-SNE (van der Maaten & Hinton, 2008) to 2-D with :class:`sklearn.manifold.TSNE`.

    Features are L2-normalised first, so distances follow the cosine similarity the k-NN uses.
    PCA initialisation, ``learning_rate='auto'``, the default early exaggeration (12 for the
    first 250 iterations); deterministic for a given seed.

    Args:
        features (Tensor): ``(N, C)`` features, ``N >= 4``.
        perplexity (float): Effective number of neighbours (clamped to ``(N - 1) / 3``).
        num_iters (int): Gradient steps (at least 250).
        seed (int): Seed of the initialisation.

    Returns:
        Tensor: ``(N, 2)`` float32 embedding.
    """
    from sklearn.manifold import TSNE
    x = nn.functional.normalize(features.double(), dim=1)
    n = len(x)
    if n < 4:
        raise ValueError(f't-SNE needs at least 4 points, got {n}')
    emb = TSNE(n_components=2,
               perplexity=min(perplexity, (n - 1) / 3),
               learning_rate='auto',
               max_iter=num_iters,
               init='pca',
               random_state=seed).fit_transform(x.numpy())
    return torch.from_numpy(emb).float()


def plot_tsne(embedding: torch.Tensor,
              labels: torch.Tensor,
              classes: Sequence[str],
              path: str,
              title: str = '',
              size: Tuple[int, int] = (800, 800),
              dpi: int = 100) -> str:
    """Scatter plot of a 2-D embedding coloured by class, written as a PNG of exactly
    ``size`` pixels (width, height)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_axes((0.06, 0.06, 0.7, 0.86))
    cmap = plt.get_cmap('tab10' if len(classes) <= 10 else 'tab20')
    emb = embedding.numpy()
    lab = labels.numpy()
    for c, name in enumerate(classes):
        sel = lab == c
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], s=10, color=cmap(c % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
