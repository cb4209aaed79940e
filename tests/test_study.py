"""benchmarks.study_networks: one run of the ghost-vs-dense study trains (with the paper's step
schedule, through Network.fit) and reports what the study tabulates."""
from benchmarks.study_networks import configs, run_one


def test_one_study_run_trains_and_reports():
    record = run_one((configs()[0], 0, 0, 4))
    assert record["epochs"] == 4 and len(record["train_loss_per_epoch"]) == 4
    assert record["train_loss_per_epoch"][-1] < record["train_loss_per_epoch"][0]
    assert 0 <= record["test_acc"] <= 1 and record["n_train"] + record["n_test"] == 1797
