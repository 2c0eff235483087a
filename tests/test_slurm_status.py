"""The SLURM status-query check (sgdtail.slurm) on SLURM configurations written out."""

from __future__ import annotations

import pytest

from sgdtail.slurm import choose_status_command, min_job_age_needed

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
    config = {**NO_ACCOUNTING, "MinJobAge": f"{min_job_age_needed(None) - 1} sec"}
    with pytest.raises(ValueError, match=r"MinJobAge .*slurm\.conf") as err:
        choose_status_command(configured, config)
    assert "\n" not in str(err.value)


def test_the_threshold_covers_the_plugins_rule_and_its_longest_wait():
    # default first wait 40 s: the plugin keeps squeue from 120 s, but waits up to 180 s
    # between two checks, so a job must stay listed longer than that (+ 60 s margin)
    assert min_job_age_needed(None) == 240
    assert min_job_age_needed(100) == 300  # three first waits
    config = {**NO_ACCOUNTING, "MinJobAge": "250 sec"}
    assert choose_status_command("sacct", config)[0] == "squeue"
    with pytest.raises(ValueError, match=r"MinJobAge is 250 s.*>= 300"):
        choose_status_command("sacct", config, init_seconds=100)  # the plugin would use sacct
    with pytest.raises(ValueError, match=r"MinJobAge is 150 s.*>= 240"):
        choose_status_command("sacct", {**NO_ACCOUNTING, "MinJobAge": "150 sec"})


@pytest.mark.parametrize("value, seconds", [("1h", 3600), ("2 hours", 7200), ("600", 600)])
def test_min_job_age_units_are_read_as_the_plugin_reads_them(value, seconds):
    command, note = choose_status_command("sacct", {**NO_ACCOUNTING, "MinJobAge": value})
    assert command == "squeue" and f"MinJobAge {seconds} s" in note


def test_an_unreadable_min_job_age_without_accounting_stops_with_what_to_change():
    config = {"AccountingStorageType": "accounting_storage/none"}
    with pytest.raises(ValueError, match=r"MinJobAge is unreadable.*slurm\.conf"):
        choose_status_command("sacct", config)
