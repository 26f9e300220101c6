"""The built-in search spaces, one package each; importing this package registers them."""

from workbench.nas.spaces import cells, hyper, mbconv  # noqa: F401
