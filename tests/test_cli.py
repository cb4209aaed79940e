"""The `ghostmlp` command end to end, in process."""
import re

from ghostmlp.cli import main


def test_train_prints_held_out_accuracy(capsys):
    assert main(["train", "--epochs", "8", "--hidden", "32", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "64 -> 32 sigmoid -> 10 softmax" in out
    assert len(re.findall(r"^epoch +\d+ ", out, re.M)) == 3
    accuracy = float(re.search(r"held-out accuracy (\d\.\d+) on 449 digits", out).group(1))
    assert 0.9 < accuracy <= 1.0


def test_bad_parameter_exits_non_zero_naming_it(capsys):
    assert main(["train", "--learning-rate", "-1"]) == 2
    assert "learning_rate" in capsys.readouterr().err
