"""TAT and DKS: activations transformed so that a vanilla net (no shortcuts, no BN) of a given depth trains.

Both methods choose an activation's parameters from the net's kernel maps; DeepMind's ``dks`` package (the methods'
reference implementation) computes them, and ``models.layers.TransformedActivation`` applies them:

- ``tat``: Tailored Activation Transformation (Zhang, Botev and Martens 2022) of a leaky ReLU: the negative slope
  that keeps the net's C map at 0 at most eta = 0.9 over the whole depth, and the output scale that keeps Q(1) = 1;
- ``dks``: Deep Kernel Shaping (Martens et al. 2021) of a softplus (dks advises against ReLU for DKS, and softplus
  is the smooth ReLU): input and output scales and shifts for Q(1) = 1, Q'(1) = 1, C(0) = 0 and a maximal C'(1) of
  zeta = 1.5 over the net.

Both assume the convs keep a signal's second moment (delta-orthogonal, the methods' init, or orthogonal), which
``NetworkSpec`` requires. Our vanilla net is a chain of ``nonlinear_layers`` activations separated by convs (the
stem's and each block's); its deepest subnetwork is itself, so the subnetwork maximising function of the TAT paper
is ``r`` composed that many times. The final average pool and classifier are linear and come after the last
activation, so they do not enter. DKS's input preprocessing (``dks.pytorch.data_preprocessing``) is not applied:
the runs feed the same mean-subtracted images as every other net.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

METHODS: dict[str, tuple[str, str]] = {"tat": ("TAT", "leaky_relu"), "dks": ("DKS", "softplus")}
"""Our activation option -> (the dks package's method name, the activation it transforms)."""


def chain_subnet_max(nonlinear_layers: int) -> Callable[[float, Callable[[float], float]], float]:
    """The TAT paper's subnetwork maximising function M(x, r) of a chain of ``nonlinear_layers`` activations."""

    def subnet_max(x: float, r: Callable[[float], float]) -> float:
        for _ in range(nonlinear_layers):
            x = r(x)
        return x

    return subnet_max


@functools.cache
def transform_params(activation: str, nonlinear_layers: int) -> dict[str, object]:
    """The ``TransformedActivation`` arguments for ``activation`` ('tat' or 'dks') in a chain of that depth.

    Read through ``dks.base.activation_transform._get_activations_params``, the one function of the package that
    returns the parameters rather than a closure: our module holds them as floats, so a net pickles and its repr
    shows them. The tests check its outputs against dks's own transformed function.
    """
    from dks.base.activation_transform import _get_activations_params

    method, base = METHODS[activation]
    params = _get_activations_params([base], method=method, subnet_max_func=chain_subnet_max(nonlinear_layers))[base]
    return {"base": base, **{name: float(value) for name, value in params.items()}}
