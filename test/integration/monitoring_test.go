package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/test/controlplane"
)

const monitoringOn = `metrics: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}}`

// TestDeployMonitoringOffByDefault: the chart renders no Prometheus Operator
// object unless asked (a cluster without its CRDs would refuse the install).
func TestDeployMonitoringOffByDefault(t *testing.T) {
	m := mustRenderChart(t, nil)
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if m.find(kind, helmFullname) != nil {
			t.Errorf("%s rendered with default values", kind)
		}
	}
	m = mustRenderChart(t, values(t, monitoringOn))
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if m.find(kind, helmFullname) == nil {
			t.Errorf("no %s %s with %s", kind, helmFullname, monitoringOn)
		}
	}
	m = mustRenderChart(t, values(t, `metrics: {prometheusRule: {enabled: true, labels: {release: prom}, alertLabels: {team: network}}}`))
	rule := m.find("PrometheusRule", helmFullname)
	if rule == nil {
		t.Fatal("no PrometheusRule")
	}
	if rule.GetLabels()["release"] != "prom" {
		t.Errorf("PrometheusRule labels %v lack release=prom", rule.GetLabels())
	}
	for _, r := range alertRules(t, m) {
		if r.Labels["team"] != "network" || r.Labels["severity"] == "" {
			t.Errorf("alert %s labels %v, want team=network and a severity", r.Alert, r.Labels)
		}
	}
	if _, err := renderChart(t, values(t, `metrics: {enabled: false, serviceMonitor: {enabled: true}}`)); err == nil || !strings.Contains(err.Error(), "needs metrics.enabled=true") {
		t.Errorf("ServiceMonitor without metrics Services: err = %v", err)
	}
	if _, err := renderChart(t, values(t, `metrics: {prometheusRule: {poolUsageWarningPercent: 120}}`)); err == nil {
		t.Errorf("poolUsageWarningPercent 120 rendered")
	}
}

// TestDeployMonitoringDryRun applies the ServiceMonitor and PrometheusRule
// with a server-side dry run. The apiserver under test has no Prometheus
// Operator: testdata/monitoring.coreos.com_crds.yaml is a minimal stand-in
// (the group, kinds and versions, a few typed fields, the rest preserved),
// so this proves the objects are well-formed Kubernetes objects of the right
// group/version/kind in the right namespace, not that the Operator's own
// schema accepts every field.
func TestDeployMonitoringDryRun(t *testing.T) {
	crds, err := os.ReadFile(filepath.Join("testdata", "monitoring.coreos.com_crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := kubectlStdin(t, crds, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("install stand-in monitoring CRDs: %v\n%s", err, out)
	}
	if out, err := env.Kubectl("wait", "--for=condition=Established", "--timeout=30s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com").CombinedOutput(); err != nil {
		t.Fatalf("wait for monitoring CRDs: %v\n%s", err, out)
	}
	ensureNamespace(t, helmNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
	m := mustRenderChart(t, values(t, monitoringOn))
	out := dryRunApply(t, "chart with monitoring", m.yaml)
	for _, want := range []string{"servicemonitor.monitoring.coreos.com/" + helmFullname, "prometheusrule.monitoring.coreos.com/" + helmFullname} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run apply output lacks %q:\n%s", want, out)
		}
	}
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroup struct {
	Name  string      `json:"name"`
	Rules []alertRule `json:"rules"`
}

// ruleGroups returns the rendered PrometheusRule's spec.groups as YAML (a
// Prometheus rule file) and decoded.
func ruleGroups(t *testing.T, m manifests) ([]byte, []ruleGroup) {
	t.Helper()
	u := m.find("PrometheusRule", helmFullname)
	if u == nil {
		t.Fatal("no PrometheusRule rendered")
	}
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		t.Fatal("PrometheusRule has no spec")
	}
	file, err := yaml.Marshal(map[string]any{"groups": spec["groups"]})
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(file, &rf); err != nil {
		t.Fatalf("PrometheusRule groups: %v", err)
	}
	return file, rf.Groups
}

func alertRules(t *testing.T, m manifests) []alertRule {
	t.Helper()
	_, groups := ruleGroups(t, m)
	var out []alertRule
	for _, g := range groups {
		out = append(out, g.Rules...)
	}
	return out
}

// promtool builds (once; cached beside the control-plane binaries) and
// returns promtool from the tools module hack/tools/promtool.
func promtool(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "hack", "tools", "promtool", "build.sh"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build promtool: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestDeployAlertRules runs promtool's rule tests (testdata/alerts_test.yaml)
// against the alerts exactly as the chart renders them.
func TestDeployAlertRules(t *testing.T) {
	file, _ := ruleGroups(t, mustRenderChart(t, values(t, monitoringOn)))
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"rules.yaml": file, "alerts_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s\nrules.yaml:\n%s", strings.Join(args, " "), err, out, file)
		}
	}
}
