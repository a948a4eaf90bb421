"""DCGAN (Radford, Metz & Chintala, 2016): prepare data, train, sample, probe, evaluate.

Importing the package is cheap: submodules (which import torch) load on first use.
"""

__version__ = "0.1.0"
