"""scikit-learn's numbers for byol/tests/logistic.rs: multinomial logistic
regression (L2, lbfgs, fitted to convergence) on standardised raw pixels of
the embedded Fashion-MNIST subset (the first 2,000 train images, all 1,000
test images). Not part of the build: needs `pip install numpy scikit-learn`.

    python3 scripts/logistic_reference.py
"""
import gzip
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = os.path.join(os.path.dirname(__file__), "..", "augment", "data", "fashion-mnist-subset")


def idx(name, offset):
    with gzip.open(os.path.join(HERE, name)) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:2000] / 255.0
y_train = idx("train-labels-idx1-ubyte.gz", 8)[:2000]
x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0
y_test = idx("t10k-labels-idx1-ubyte.gz", 8)

scaler = StandardScaler().fit(x_train)
a, b = scaler.transform(x_train), scaler.transform(x_test)
for c in (1.0, 0.01):
    model = LogisticRegression(C=c, max_iter=20000, tol=1e-10).fit(a, y_train)
    z = a @ model.coef_.T + model.intercept_
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y_train)), y_train].mean()
    objective = loss + (model.coef_ ** 2).sum() / (2 * c * len(y_train))
    print(
        f"C={c}: train {model.score(a, y_train):.4f} test {model.score(b, y_test):.4f} "
        f"objective {objective:.8f} iterations {model.n_iter_[0]}"
    )
