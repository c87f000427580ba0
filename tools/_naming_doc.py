"""The "Naming" section of docs/metrics.md (issue 18): how otel_ml's names relate to the
OpenTelemetry proposal for ML inference semantic conventions, and how a rename would roll out."""

from __future__ import annotations

from otel_ml import contract


def naming_md() -> str:
    """Markdown of the section (values from :mod:`otel_ml.contract`)."""
    return f"""
## Naming: the contract version and the semantic conventions

Every meter and tracer otel_ml creates carries the contract version and a schema URL:

| | value | where it shows |
|---|---|---|
| scope name, version | `otel_ml`, the package version | `otel_scope_name`, `otel_scope_version` labels |
| scope attribute `{contract.SCOPE_CONTRACT_VERSION}` | `{contract.CONTRACT_VERSION}` (`CONTRACT_VERSION` in `otel_ml.contract`) | `otel_scope_otel_ml_contract_version` label (through the Collector) |
| schema URL | `{contract.SCHEMA_URL}` | the OTLP scope's `schema_url` |

The schema URL names the semantic-conventions release the *standard* attributes follow
(`error.type`, `service.*`). The `ml.*` names are otel_ml's own: OpenTelemetry has no stable
conventions for non-generative model inference. Its GenAI conventions (`gen_ai.*`) cover
calls to generative models (tokens, prompts) and do not apply to a classifier or regressor.
A proposal for ML model inference conventions is open
(open-telemetry/semantic-conventions issue 3420, filed 2026-02), with no names adopted yet.
otel_ml's names were chosen so that they can map onto such conventions one to one:

| concept | otel_ml today | what a convention would need |
|---|---|---|
| model identity | `ml.model.name`, `ml.model.version` (span and data-point attributes) | the same two attributes, under the adopted namespace |
| a predict call | span `ml.<method> <model>`, histogram `ml.model.predict.duration` (s) | an inference span and an operation-duration histogram |
| failures | `error.type` (already the standard attribute) | unchanged |
| rows / batch | `ml.model.predictions`, `ml.batch.size` | a count of inferences and a batch size |
| data and model quality | `ml.feature.*`, `ml.model.performance`, drift | likely outside a first convention: stays `ml.*` |

### How a rename would be rolled out

If a convention is adopted, the names change without breaking a user's dashboards silently,
the way OpenTelemetry migrated the HTTP conventions (`OTEL_SEMCONV_STABILITY_OPT_IN`):

1. **Opt in.** A release adds the new names behind an environment switch,
   `OTEL_ML_SEMCONV_OPT_IN=ml` (new names only) or `ml/dup` (old and new side by side, to
   migrate dashboards and alerts while both are exported). Without it nothing changes.
2. **Both shipped.** The rules, dashboards and the monitoring mixin are generated for both name
   sets from the contract (the mixin's `_config` chooses); the contract version is bumped, so
   `otel_scope_otel_ml_contract_version` tells which names a series follows.
3. **Old names kept for a release.** The next release makes the new names the default and
   keeps the old ones behind the switch, logging one deprecation line at start-up; the old names
   go only in the release after that, announced in the changelog.
"""
