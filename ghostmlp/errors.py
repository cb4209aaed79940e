"""The errors that training raises on every rank at once."""


class TrainingDiverged(FloatingPointError):
    """A loss or a weight became NaN or infinite: training stopped.

    epoch (0-based, counted over all the network's epochs), step (1-based, counted over
    all its steps) and learning_rate say where; any may be None when unknown. Every rank
    raises it at the same step, since the loss is the same on every rank.
    """

    def __init__(self, message, epoch=None, step=None, learning_rate=None):
        super().__init__(message)
        self.epoch, self.step, self.learning_rate = epoch, step, learning_rate
