"""`ehrbench run`'s flags: non-finite numbers refused or read as meant, and `--dataset-option`
merged into the configuration's `[dataset_options]`; `--profile smoke` shrinks the default dataset."""

from __future__ import annotations

import json

import pytest

from ehrbench.config import resolve_config

QUICK = ["--profile", "smoke", "--repeats", "1", "--generators", "train-resample", "--metrics",
         "dimension_wise_probability", "--no-report"]


@pytest.mark.parametrize("args, message", [
    (["--timeout", "nan"], "timeout must be a positive number of seconds (inf: no timeout), got nan"),
    (["--timeout", "-inf"], "timeout must be a positive number of seconds (inf: no timeout), got -inf"),
    (["--cpus-per-job", "nan"], "cpus_per_job must be a finite number, got nan"),
    (["--cpus-per-job", "inf"], "cpus_per_job must be a finite number, got inf"),
    (["--gpus-per-job", "nan"], "gpus_per_job must be a finite number, got nan"),
    (["--gpus-per-job", "inf"], "gpus_per_job must be a finite number, got inf"),
])
def test_non_finite_numbers_are_refused_with_a_clear_message(cli, args, message):
    result = cli("run", *QUICK, *args)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_an_infinite_timeout_is_no_timeout(cli, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *QUICK, "--dataset-option", "patients=100", "--dataset-option", "codes=20",
                 "--timeout", "inf", "--out", out)
    assert result.code == 0, result.err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["timeout"] is None
    assert [json.loads(line)["status"] for line in (out / "results.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "job"] == ["ok"]


def test_a_dataset_option_flag_merges_with_the_config_table(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[dataset_options]\npatients = 100\ncodes = 20\n")
    out = tmp_path / "r"
    result = cli("run", config, *QUICK, "--dataset-option", "seed=3", "--out", out)
    assert result.code == 0, result.err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["dataset_options"] == {"patients": 100, "codes": 20, "seed": "3"}
    assert manifest["dataset"]["options"] == {"patients": 100, "codes": 20, "seed": 3}
    # The flag wins for its own key; resuming with the same flags changes nothing.
    assert resolve_config(config, {"dataset_options": {"codes": "30"}}).dataset_options == {"patients": 100, "codes": "30"}
    again = cli("run", config, *QUICK, "--dataset-option", "seed=3", "--resume", "--out", out)
    assert again.code == 0, again.err
    changed = cli("run", config, *QUICK, "--dataset-option", "seed=4", "--resume", "--out", out)
    assert changed.code == 2 and "dataset_options" in changed.err


def test_smoke_shrinks_the_default_dataset_and_an_option_still_wins(cli, tmp_path):
    result = cli("run", *QUICK, "--out", tmp_path / "a")
    assert result.code == 0, result.err
    dataset = json.loads((tmp_path / "a" / "run.json").read_text())["dataset"]
    assert (dataset["name"], dataset["n_patients"], dataset["n_codes"]) == ("simulated", 2000, 150)
    assert dataset["options"] == {"patients": 2000, "codes": 150, "seed": 0}
    mine = cli("run", *QUICK, "--dataset-option", "patients=300", "--out", tmp_path / "b")
    assert mine.code == 0, mine.err
    dataset = json.loads((tmp_path / "b" / "run.json").read_text())["dataset"]
    assert (dataset["n_patients"], dataset["n_codes"]) == (300, 150)
