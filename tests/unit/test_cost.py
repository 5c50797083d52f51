"""bench/cost.py: the README shows what it prints, and its fixed counts are
the template's and the code's."""
from __future__ import annotations

from pathlib import Path

from bench import cost
from chalicelib.observability.metrics import DIMENSION_SETS, UNITS
from chalicelib.processors import processor_names
from local_cloud.stack import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_cost_table_bench_cost_prints():
    assert cost.markdown() in (REPO_ROOT / "README.md").read_text()


def test_the_alarm_count_is_the_templates():
    resources = load_template()["Resources"].values()
    assert cost.ALARMS == sum(r["Type"] == "AWS::CloudWatch::Alarm" for r in resources)


def test_the_metric_count_is_every_metric_per_processor_used_and_per_stage():
    assert set(cost.PROCESSORS_USED) <= set(processor_names())
    assert DIMENSION_SETS == (("Stage", "Processor"), ("Stage",))
    assert cost.CUSTOM_METRICS == len(UNITS) * (len(cost.PROCESSORS_USED) + 1)


def test_the_total_moves_with_the_workload():
    doubled = [cost.JobKind(**{**kind.__dict__, "per_month": kind.per_month * 2}) for kind in cost.WORKLOAD]
    once, twice = cost.monthly_costs(), cost.monthly_costs(doubled)
    assert twice["Textract (DetectDocumentText)"] == 2 * once["Textract (DetectDocumentText)"] > 0
    assert sum(twice.values()) > sum(once.values())


def test_the_readme_states_the_month_without_textract_and_the_fixed_counts():
    readme = (REPO_ROOT / "README.md").read_text()
    costs = cost.monthly_costs([kind for kind in cost.WORKLOAD if kind.processor != "pages"])
    assert f"month costs ${sum(costs.values()):,.2f}, most of it CloudWatch's" in readme
    assert costs["CloudWatch (logs, metrics, alarms)"] > sum(costs.values()) / 2
    assert f"{cost.ALARMS} alarms and {cost.CUSTOM_METRICS} custom metrics" in readme
