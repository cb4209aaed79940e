"""The `ghostmlp` command: train on the bundled digits and report held-out accuracy."""
import argparse
import sys
import time

from ghostmlp.data import load_digits, train_test_split
from ghostmlp.network import HIDDEN_ACTIVATIONS, LOSSES, Network

# Step decay: half the epochs at the given rate, a quarter at 1/5 of it, a quarter at 1/25.
DECAY_PHASES = ((0.5, 1.0), (0.25, 0.2), (0.25, 0.04))


def build_parser():
    parser = argparse.ArgumentParser(prog="ghostmlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train on the bundled 8x8 digits, print held-out accuracy")
    train.add_argument("--hidden", type=int, nargs="+", default=[256], help="hidden layer sizes")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid")
    train.add_argument("--loss", choices=tuple(LOSSES), default="cross_entropy")
    train.add_argument("--learning-rate", type=float, default=2.0)
    train.add_argument("--momentum", type=float, default=0.0)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--test-fraction", type=float, default=0.25)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    return parser


def train(args):
    """Train with a step-decayed learning rate; prints one line per phase and the accuracy."""
    X, y = load_digits(dtype=args.dtype)
    X_train, X_test, y_train, y_test = train_test_split(X, y, args.test_fraction, args.seed)
    net = Network(seed=args.seed, dtype=args.dtype, loss=args.loss,
                  learning_rate=args.learning_rate, momentum=args.momentum,
                  weight_decay=args.weight_decay)
    net.add_layer("input", X.shape[1])
    for size in args.hidden:
        net.add_layer("hidden", size, activation=args.activation)
    net.add_layer("output", 10)
    net.initialize()
    print(net)
    start = time.perf_counter()
    for fraction, factor in DECAY_PHASES:
        epochs = max(1, round(args.epochs * fraction))
        history = net.fit(X_train, y_train, epochs=epochs, batch_size=args.batch_size,
                          learning_rate=args.learning_rate * factor)
        print(f"epoch {net.epochs_trained:4d}  lr {net.learning_rate:.4g}  "
              f"train loss {history['loss'][-1]:.4f}  {time.perf_counter() - start:.2f} s")
    scores = net.evaluate(X_test, y_test)
    print(f"held-out accuracy {scores['accuracy']:.4f} on {len(y_test)} digits "
          f"(loss {scores['loss']:.4f})")
    return scores


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except ValueError as error:
        print(f"ghostmlp: error: {error}", file=sys.stderr)
        return 2
    return 0
