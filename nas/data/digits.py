"""scikit-learn's bundled 8x8 handwritten digits (1,797 images): the embedded default, no download."""
from __future__ import annotations

import numpy as np

from vitnas.nas.data.dataset import Splits

# Fixed so every run and every machine sees the same test set.
_TEST_FRACTION, _SPLIT_SEED = 0.2, 0


def read_digits() -> Splits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255, 1 channel
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=_TEST_FRACTION,
                                                        random_state=_SPLIT_SEED, stratify=labels)
    # Mirrored digits are other glyphs (or none), so flipping is not a valid augmentation.
    return Splits(x_train, y_train, x_test, y_test, classes=[str(d) for d in range(10)], flip_invariant=False)
