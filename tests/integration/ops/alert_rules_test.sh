#!/usr/bin/env bash
# dashboards/: `promtool check rules` accepts alerts.yml, `promtool test rules` passes alerts_test.yml, every
# alert in alerts.yml has at least one test case where it fires and a runbook section, the example scrape
# config is valid, and
# the Grafana dashboard is valid JSON with the ${datasource} and pipeline variables.
#   alert_rules_test.sh REPO_ROOT
set -euo pipefail
root=$1
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
cd "$root/dashboards"

promtool check rules alerts.yml
promtool test rules alerts_test.yml

# Every alert is tested firing: its name appears in a test followed by a non-empty exp_alerts.
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' alerts.yml)
[ -n "$alerts" ] || fail "no alerts found in alerts.yml"
for a in $alerts; do
  awk -v a="$a" '
    $1 == "alertname:" && $2 == a { want = 1; next }
    want && $1 == "exp_alerts:" { if ($2 != "[]") found = 1; want = 0 }
    END { exit !found }' alerts_test.yml || fail "alert $a has no test case where it fires"
done
echo "every alert has a firing test: $(echo "$alerts" | wc -l) alerts"

# Every rule links its section of docs/runbooks.md, which has one per alert; no rule names a job or a unit.
for a in $(echo "$alerts" | sort -u); do
  grep -qx "## $a" ../docs/runbooks.md || fail "docs/runbooks.md has no section '## $a'"
  anchor=$(echo "$a" | tr '[:upper:]' '[:lower:]')
  grep -q "runbook_url: \"file:///usr/share/doc/cdcsync/docs/runbooks.md#$anchor\"" alerts.yml ||
    fail "alert $a has no runbook_url to its section"
done
[ "$(grep -c '^ *- alert:' alerts.yml)" = "$(grep -c '^ *runbook_url:' alerts.yml)" ] || fail "a rule has no runbook_url"
grep -n 'job="\|job=~\|systemctl status cdcsync\b' alerts.yml && fail "a rule names a job or the unit cdcsync"

# The example scrape config, with its rule_files pointed at this checkout.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/share/cdcsync/dashboards/alerts.yml|$root/dashboards/alerts.yml|" prometheus.yml >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml"

# The dashboard: JSON, datasource variable, pipeline variable from cdcsync_build_info, every panel on ${datasource}.
if command -v jq >/dev/null; then
  jq -e '.templating.list | map(select(.name == "datasource" and .type == "datasource")) | length == 1' cdcsync.json >/dev/null ||
    fail "dashboard: no datasource variable"
  jq -e '.templating.list | map(select(.name == "pipeline" and .definition == "label_values(cdcsync_build_info, pipeline)")) | length == 1' \
    cdcsync.json >/dev/null || fail "dashboard: no pipeline variable"
  jq -e '[.panels[] | select(.targets) | .targets[] | .datasource.uid] | all(. == "${datasource}")' cdcsync.json >/dev/null ||
    fail "dashboard: a target does not use \${datasource}"
  jq -e '[.panels[] | select(.targets) | .targets[] | .expr] | all(contains("pipeline=~\"$pipeline\""))' cdcsync.json >/dev/null ||
    fail "dashboard: an expression is not filtered by \$pipeline"
else
  grep -q '"name": "datasource"' cdcsync.json || fail "dashboard: no datasource variable"
  grep -q 'label_values(cdcsync_build_info, pipeline)' cdcsync.json || fail "dashboard: no pipeline variable"
fi
echo "PASS"
