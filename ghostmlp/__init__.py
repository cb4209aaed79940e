"""ghostmlp: multilayer perceptrons trained across MPI ranks, after the paper's ghost-neuron framework."""
from ghostmlp import optim
from ghostmlp.checkpoint import load, save
from ghostmlp.network import Network

__all__ = ["Network", "load", "optim", "save"]
__version__ = "0.1.0"
