"""ghostmlp: multilayer perceptrons trained across MPI ranks, after the paper's ghost-neuron framework."""
from ghostmlp import optim, schedule
from ghostmlp.checkpoint import load, save
from ghostmlp.errors import TrainingDiverged
from ghostmlp.network import Network

__all__ = ["Network", "TrainingDiverged", "load", "optim", "save", "schedule"]
__version__ = "0.1.0"
