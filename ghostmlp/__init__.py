"""ghostmlp: multilayer perceptrons trained across MPI ranks, after the paper's ghost-neuron framework."""
from ghostmlp.checkpoint import load
from ghostmlp.network import Network

__all__ = ["Network", "load"]
__version__ = "0.1.0"
