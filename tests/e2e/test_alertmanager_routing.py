"""The shipped Alertmanager configuration, run by the real Alertmanager: routing and inhibition."""

from __future__ import annotations

import json
import urllib.request

from stack import harness


def post_alerts(url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def alert(name: str, severity: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, "ml_model_name": "churn", **labels},
            "annotations": {"summary": name}}


def test_critical_feature_alert_inhibits_only_the_same_features_warnings(stack_binaries,
                                                                         tmp_path):
    with harness.WebhookSink() as sink, harness.Alertmanager(
            stack_binaries.alertmanager, tmp_path, webhook_url=sink.url) as am:
        post_alerts(am.url, [
            alert("MLFeatureDriftCritical", "critical", ml_feature_name="age"),
            alert("MLFeatureDriftWarning", "warning", ml_feature_name="age"),
            alert("MLFeatureDriftWarning", "warning", ml_feature_name="income"),
            alert("MLModelErrorRatioHigh", "critical"),
            alert("MLModelLatencyP99High", "warning"),
        ])

        expected = {
            ("MLFeatureDriftCritical", "age"): "active",
            ("MLFeatureDriftWarning", "age"): "suppressed",  # same model and feature
            ("MLFeatureDriftWarning", "income"): "active",  # another feature
            ("MLModelErrorRatioHigh", None): "active",
            ("MLModelLatencyP99High", None): "active",  # model-wide: never inhibited
        }

        def states() -> dict:
            found = {(a["labels"]["alertname"], a["labels"].get("ml_feature_name")):
                     a["status"]["state"] for a in am.alerts()}
            # Alertmanager lists a new alert as "active" until its inhibitor is matched (a
            # fraction of a second later): wait for the states, not only for the 5 alerts.
            assert found == expected, found
            return found

        harness.wait_for(states, timeout=30, description="the 5 alerts, the age warning inhibited")
        # Routed by severity and delivered to the webhook; the inhibited one never is.
        sink.wait_for_alert(lambda a: a["labels"]["alertname"] == "MLModelLatencyP99High")
        sink.wait_for_alert(lambda a: a["labels"]["alertname"] == "MLModelErrorRatioHigh")
        delivered = {(a["labels"]["alertname"], a["labels"].get("ml_feature_name"))
                     for a in sink.alerts()}
        assert ("MLFeatureDriftWarning", "age") not in delivered
