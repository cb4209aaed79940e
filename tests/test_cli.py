"""The `ghostmlp` command end to end: in process (serial) and under mpiexec at 1 and 3 ranks."""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ghostmlp
from ghostmlp.cli import main
from ghostmlp.datasets import load_digits
from ghostmlp.normalise import Normaliser
from ghostmlp.train import Trainer
from test_mpi import mpiexec

QUICK = ["--epochs", "6", "--hidden", "32", "--dtype", "float64", "--batch-size", "16"]


def held_out(out):
    return float(re.search(r"held-out accuracy (\d\.\d+) on 449 samples", out).group(1))


def test_train_prints_progress_and_held_out_accuracy(capsys, tmp_path):
    history, plot = tmp_path / "history.csv", tmp_path / "curves.png"
    assert main(["train", *QUICK, "--validation-fraction", "0.1", "--history", str(history),
                 "--plot", str(plot), "--schedule", "step", "--learning-rate", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "64 -> 32 relu -> 10 softmax" in out and "Adam(lr=0.01," in out
    lines = re.findall(r"^epoch (\d+)  learning_rate (\S+)  loss \S+  "
                       r"val_loss \S+  val_accuracy \S+  seconds \S+$", out, re.M)
    assert [int(e) for e, _ in lines] == [1, 2, 3, 4, 5, 6]
    assert [float(r) for _, r in lines] == [0.01, 0.01, 0.01, 0.002, 0.002, 0.0004]
    assert "stopped after epoch 6: --max-epochs reached" in out
    assert 0.8 < held_out(out) <= 1.0
    rows = list(csv.DictReader(history.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("schedule", [
    ["--schedule", "cosine", "--warmup", "1"],
    ["--schedule", "plateau", "--tol", "10", "--n-iter-no-change", "1"]], ids=["cosine", "plateau"])
def test_checkpoint_resume_evaluate_predict(capsys, tmp_path, monkeypatch, schedule):
    """A run stopped after epoch 3's checkpoint and resumed ends with the weights of one
    straight run: the schedule's state and the plateau count travel in the checkpoint."""
    straight, half = tmp_path / "straight.gmlp", tmp_path / "half.gmlp"
    common = ["--hidden", "16", "--dtype", "float64", "--optimizer", "sgd", "--momentum", "0.5",
              "--learning-rate", "0.05", "--epochs", "6", *schedule]
    assert main(["train", *common, "--checkpoint", str(straight)]) == 0
    one_pass = Trainer._pass

    def interrupt_in_epoch_4(self, *args):
        if self.net.epochs_trained == 3:
            raise KeyboardInterrupt
        return one_pass(self, *args)

    with monkeypatch.context() as patch:               # a run killed after epoch 3's checkpoint
        patch.setattr(Trainer, "_pass", interrupt_in_epoch_4)
        with pytest.raises(KeyboardInterrupt):
            main(["train", *common, "--checkpoint", str(half), "--checkpoint-every", "3"])
    assert ghostmlp.load(half).epochs_trained == 3
    assert main(["train", "--checkpoint", str(half), "--resume"]) == 0    # the rest is saved
    out = capsys.readouterr().out
    assert "resumed" in out and "after epoch 3" in out
    for (w, b), (rw, rb) in zip(ghostmlp.load(straight).get_weights(),
                                ghostmlp.load(half).get_weights()):
        np.testing.assert_allclose(rw, w, rtol=1e-12, atol=0)
        np.testing.assert_allclose(rb, b, rtol=1e-12, atol=0)
    assert main(["evaluate", "--checkpoint", str(straight)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy \S+  loss \S+  on 449 samples \(held-out 0.25 of digits\)", out)
    predictions = tmp_path / "classes.txt"
    assert main(["predict", "--checkpoint", str(straight), "--output", str(predictions)]) == 0
    classes = np.loadtxt(predictions, dtype=int)
    X, _ = load_digits()
    saved = ghostmlp.checkpoint.read_header(straight)["extra"]["normaliser"]
    X = Normaliser.from_dict(saved).transform(X)         # the training split's scaling
    np.testing.assert_array_equal(classes, ghostmlp.load(straight).predict(X))


def test_info_and_bench(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ghostmlp {ghostmlp.__version__}") and "MPI:" in out and '"opt_flags"' in out
    assert main(["bench", "--model", "S", "--batch", "4", "--iterations", "3", "--warmup", "1"]) == 0
    assert re.search(r"S x1 ghost on 1 rank\(s\), batch 4: \S+ ms/iteration", capsys.readouterr().out)


def test_bench_trains_the_hidden_activation_asked_for(tmp_path, monkeypatch):
    from ghostmlp import bench
    built = []
    build = bench.build_network
    monkeypatch.setattr(bench, "build_network",
                        lambda *args, **kwargs: built.append(build(*args, **kwargs)) or built[-1])
    record = tmp_path / "bench.jsonl"
    assert main(["bench", "--model", "S", "--batch", "2", "--iterations", "2", "--warmup", "0",
                 "--activation", "tanh", "--json", str(record)]) == 0
    assert [activation for _, _, activation in built[0].layers[1:-1]] == ["tanh"] * 3
    assert json.loads(record.read_text())["activation"] == "tanh"


def test_errors_name_the_parameter_or_file(capsys, tmp_path):
    assert main(["train", "--learning-rate", "-1"]) == 1
    assert "--learning-rate must be a finite number > 0, got -1.0" in capsys.readouterr().err
    assert main(["train", "--inputs", str(tmp_path / "missing.txt"), "--labels", "x"]) == 1
    assert "missing.txt" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 1
    assert "--resume needs an existing --checkpoint" in capsys.readouterr().err
    assert main(["train", "--grid", "2x1"]) == 1
    assert "grid=(2, 1) holds 2 ranks, but the communicator has 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--grid", "2by1"])
    assert "--grid must be DxM" in capsys.readouterr().err


MACHINE = str(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "machine_workbox.json")


def test_plan_prints_every_layout_and_one_recommendation(capsys):
    assert main(["plan", "--model", "S", "--batch", "256", "--ranks", "2", "--machine", MACHINE]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\d x \d ", line)]
    assert {row.split()[3] for row in rows} == {"dense", "ghost"} and len(rows) >= 4
    assert re.search(r"^recommended: \d x \d ", out, re.M)


def test_grid_auto_trains_on_the_planners_grid(capsys):
    assert main(["train", *QUICK, "--grid", "auto", "--machine", MACHINE]) == 0
    assert held_out(capsys.readouterr().out) > 0.8


def run_mpi(ranks, args, folder, timeout=240):
    command = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "ghostmlp", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("ranks", [1, 3])
def test_train_under_mpiexec_matches_serial(ranks, tmp_path, capsys):
    args = ["train", "--epochs", "3", "--hidden", "24", "--dtype", "float64",
            "--checkpoint", str(tmp_path / "net.gmlp")]
    done = run_mpi(ranks, args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("held-out accuracy") == 1           # rank 0 speaks
    assert main(args[:-2]) == 0
    assert held_out(done.stdout) == held_out(capsys.readouterr().out)
    header = ghostmlp.checkpoint.read_header(tmp_path / "net.gmlp")
    assert header["state"]["epochs_trained"] == 3


DIVERGING = ["--optimizer", "sgd", "--learning-rate", "1e6", "--epochs", "6",
             "--checkpoint-every", "1", "--resume"]


@pytest.mark.parametrize("ranks", [0, 2, 3])
def test_divergence_fails_every_rank_and_keeps_the_last_good_checkpoint(ranks, tmp_path, capsys):
    """ranks 0: in process. A resumed run at a rate of 1e6 diverges in its first epoch: the
    command exits 1 with one message naming epoch, step and rate, and the checkpoint of the
    good run is left as it was (byte for byte)."""
    path = tmp_path / "net.gmlp"
    assert main(["train", "--epochs", "2", "--hidden", "24", "--optimizer", "sgd",
                 "--checkpoint", str(path)]) == 0
    good = path.read_bytes()
    args = ["train", *DIVERGING, "--checkpoint", str(path)]
    if ranks:
        done = run_mpi(ranks, args, tmp_path, timeout=120)
        code, err = done.returncode, done.stderr
    else:
        capsys.readouterr()
        code, err = main(args), capsys.readouterr().err
    assert code == 1, err
    assert re.search(r"ghostmlp train: error: training diverged in epoch 3, step \d+ "
                     r"\(learning rate 1e\+06\)", err), err
    assert err.count("training diverged") == 1
    assert path.read_bytes() == good


def test_a_failing_rank_ends_the_whole_job(tmp_path):
    bad = tmp_path / "inputs.txt"
    bad.write_text("1 2 3\n4 five 6\n")
    (tmp_path / "labels.txt").write_text("0\n1\n")
    done = run_mpi(3, ["train", "--inputs", str(bad), "--labels", str(tmp_path / "labels.txt")],
                   tmp_path, timeout=120)
    assert done.returncode != 0
    assert "inputs.txt" in done.stderr and "line 2" in done.stderr


def test_convert_text_files_to_npz_and_back(capsys, tmp_path):
    inputs, labels = tmp_path / "in.txt", tmp_path / "labels.txt"
    inputs.write_text("0.5, 1\n2, 3.25\n# a comment\n4, 5\n")
    labels.write_text("0 1\n1 0\n0 1\n")
    assert main(["convert", str(inputs), str(tmp_path / "out.npz"), "--labels", str(labels)]) == 0
    saved = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(saved["X"], [[0.5, 1], [2, 3.25], [4, 5]])
    np.testing.assert_array_equal(saved["y"], [1, 0, 1])
    assert main(["convert", str(tmp_path / "out.npz"), str(tmp_path / "back.txt")]) == 1
    assert "out.npz" in capsys.readouterr().err          # two arrays: which one is X is unclear


def test_a_ghost_checkpoint_evaluates_as_dense(capsys, tmp_path):
    path = str(tmp_path / "ghost.gmlp")
    assert main(["train", "--epochs", "2", "--hidden", "24", "--connectivity", "ghost",
                 "--blocks", "2", "--checkpoint", path]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", path]) == 0
    ghost = capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", path, "--as-dense"]) == 0
    dense = capsys.readouterr().out
    assert ghost.split("  on ")[0] == dense.split("  on ")[0] and "accuracy 0." in ghost


def test_resume_refuses_settings_that_differ(capsys, tmp_path):
    path = str(tmp_path / "net.gmlp")
    assert main(["train", "--epochs", "1", "--hidden", "12", "--checkpoint", path]) == 0
    assert main(["train", "--epochs", "2", "--hidden", "13", "--checkpoint", path, "--resume"]) == 1
    assert "--hidden [13] differs from [12] in the checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--validation-fraction", "1"], "--validation-fraction must lie in [0, 1)"),
    (["--labels", "y.txt"], "--labels and --label-column need --inputs"),
    (["--checkpoint-every", "2"], "--checkpoint-every needs --checkpoint"),
    (["--history", "/no/such/folder/h.csv"], "--history /no/such/folder/h.csv: no such folder"),
    (["--epochs", "0"], "--max-epochs must be a positive integer, got 0"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--warmup", "2"], "--warmup applies to --schedule cosine, not constant"),
    (["--momentum", "0.9"], "--momentum applies to --optimizer sgd, not adam"),
])
def test_options_that_would_be_ignored_or_fail_late_are_refused(capsys, args, message):
    assert main(["train", *args]) == 1
    assert message in capsys.readouterr().err


def test_train_reads_what_convert_writes_and_csv_label_columns(capsys, tmp_path):
    X, y = load_digits()
    np.savez(tmp_path / "digits.npz", X=X, y=y)
    assert main(["train", "--inputs", str(tmp_path / "digits.npz"), *QUICK]) == 0
    from_npz = held_out(capsys.readouterr().out)
    header = "label," + ",".join(f"p{i}" for i in range(64))
    np.savetxt(tmp_path / "digits.csv", np.column_stack([y, X]), delimiter=",", header=header,
               comments="", fmt="%.10g")
    assert main(["train", "--inputs", str(tmp_path / "digits.csv"), "--label-column", "label",
                 *QUICK]) == 0
    assert held_out(capsys.readouterr().out) == from_npz
    assert main(["train", *QUICK]) == 0
    assert held_out(capsys.readouterr().out) == from_npz      # the same data as --dataset digits


def test_npy_inputs_are_memory_mapped_and_train_as_in_memory(capsys, tmp_path):
    """.npy inputs and labels: every rank maps them, the normaliser is fitted and the data
    standardised and evaluated by rows; the same run as from an .npz read into memory."""
    X, y = load_digits()
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "digits.npz", X=X.astype(np.float32), y=y)
    common = [*QUICK, "--validation-fraction", "0.1"]
    assert main(["train", "--inputs", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                 *common, "--checkpoint", str(tmp_path / "mapped.gmlp")]) == 0
    mapped = capsys.readouterr().out
    assert main(["train", "--inputs", str(tmp_path / "digits.npz"), *common,
                 "--checkpoint", str(tmp_path / "memory.gmlp")]) == 0
    assert held_out(capsys.readouterr().out) == held_out(mapped) > 0.8
    for (w, b), (mw, mb) in zip(ghostmlp.load(tmp_path / "memory.gmlp").get_weights(),
                                ghostmlp.load(tmp_path / "mapped.gmlp").get_weights()):
        np.testing.assert_array_equal(mw, w)
        np.testing.assert_array_equal(mb, b)
    np.save(tmp_path / "bad.npy", y[:10])
    assert main(["train", "--inputs", str(tmp_path / "X.npy"), "--labels",
                 str(tmp_path / "bad.npy")]) == 1
    assert "has 1797 samples but" in capsys.readouterr().err


def test_a_checkpoint_in_an_unwritable_folder_is_refused_before_training(capsys, tmpfs):
    path = tmpfs("ro,size=64k") / "net.gmlp"
    assert main(["train", *QUICK, "--checkpoint", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"ghostmlp train: error: --checkpoint {path}: the folder {path.parent} is not " \
           "writable" in err
    assert "epoch 1" not in out


def test_labels_that_are_not_one_hot_name_the_file_and_line(capsys, tmp_path):
    (tmp_path / "inputs.txt").write_text("1 2\n3 4\n5 6\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("0 1\n# a comment\n1 1\n1 0\n")
    assert main(["train", "--inputs", str(tmp_path / "inputs.txt"), "--labels", str(labels),
                 "--label-kind", "onehot"]) == 1
    assert (f"ghostmlp train: error: {labels}, line 3: not a one-hot row (0s and a single 1): "
            "[1.0, 1.0]") in capsys.readouterr().err


def test_inputs_of_another_width_than_the_checkpoint_are_refused(capsys, tmp_path):
    path = tmp_path / "net.gmlp"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--checkpoint", str(path)]) == 0
    inputs, labels = tmp_path / "inputs.txt", tmp_path / "labels.txt"
    inputs.write_text("1 2 3\n4 5 6\n")
    labels.write_text("0\n1\n")
    capsys.readouterr()
    expected = (f"{inputs}: 3 features per sample, but the checkpoint {path} takes 64 inputs")
    for command in (["evaluate"], ["train", "--resume", "--epochs", "2"],
                    ["predict", "--output", str(tmp_path / "out.txt")]):
        data = ["--inputs", str(inputs)] + (["--labels", str(labels)] if
                                            command[0] != "predict" else [])
        assert main([*command, "--checkpoint", str(path), *data]) == 1
        assert f"ghostmlp {command[0]}: error: {expected}" in capsys.readouterr().err
    assert ghostmlp.load(path).epochs_trained == 1


def test_a_bad_input_message_reaches_the_terminal_every_time(tmp_path):
    """Every rank sees the error: they agree on it and exit 1 normally, rank 0 printing
    the message once; 20 runs on 3 ranks, each must show it (an abort could lose it)."""
    bad = tmp_path / "inputs.txt"
    bad.write_text("1 2 3\n4 five 6\n")
    (tmp_path / "labels.txt").write_text("0\n1\n")
    args = ["train", "--inputs", str(bad), "--labels", str(tmp_path / "labels.txt")]
    for run in range(20):
        done = run_mpi(3, args, tmp_path, timeout=60)
        assert (done.returncode, done.stderr.count(f"{bad}, line 2: non-numeric token 'five'")) \
            == (1, 1), f"run {run}: {done.stderr[-2000:]}"


def test_an_error_on_one_rank_only_is_printed_and_ends_the_job(tmp_path):
    """The others never fail: after the agreement's wait the rank prints, naming itself,
    and aborts the job; the message arrives every time."""
    script = Path(__file__).resolve().parent / "mpi" / "fail_on_one_rank.py"
    for run in range(5):
        done = subprocess.run([mpiexec(), "-n", "3", sys.executable, str(script)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, done.stderr
        assert "ghostmlp: error: only rank 1 sees this (rank 1 of 3)" in done.stderr, \
            f"run {run}: {done.stderr[-2000:]}"
