"""The SLURM status-query check (sgdtail.slurm) on SLURM configurations written out."""

from __future__ import annotations

import pytest

from sgdtail.slurm import MIN_JOB_AGE_S, choose_status_command

NO_ACCOUNTING = {"AccountingStorageType": "accounting_storage/none", "MinJobAge": "600 sec"}
ACCOUNTING = {"AccountingStorageType": "accounting_storage/slurmdbd", "MinJobAge": "300 sec"}


def test_sacct_without_accounting_becomes_squeue_with_one_line_saying_so():
    command, note = choose_status_command("sacct", NO_ACCOUNTING)
    assert command == "squeue"
    assert "no job accounting" in note and "squeue" in note and "\n" not in note


@pytest.mark.parametrize("configured", ["sacct", "squeue"])
def test_a_working_query_is_left_alone(configured):
    assert choose_status_command(configured, ACCOUNTING) == (configured, "")
    assert choose_status_command("squeue", NO_ACCOUNTING) == ("squeue", "")


def test_an_unreadable_configuration_changes_nothing():
    assert choose_status_command("sacct", {}) == ("sacct", "")
    assert choose_status_command(None, NO_ACCOUNTING) == (None, "")


@pytest.mark.parametrize("configured", ["sacct", "squeue"])
def test_no_accounting_and_a_short_min_job_age_stops_with_what_to_change(configured):
    config = {**NO_ACCOUNTING, "MinJobAge": f"{MIN_JOB_AGE_S - 1} sec"}
    with pytest.raises(ValueError, match=r"MinJobAge .*slurm\.conf") as err:
        choose_status_command(configured, config)
    assert "\n" not in str(err.value)
