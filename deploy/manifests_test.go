package deploy

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	partOfLabel    = "app.kubernetes.io/part-of"
	componentLabel = "app.kubernetes.io/component"
	metricsPort    = 9100
	// healthPort is the plaintext grpc.health.v1 listener of auth, user and
	// apikey, for the kubelet's gRPC probe (it speaks no TLS).
	healthPort = 9099
	// The labels that open Moreid's ports to pods outside the suite.
	clientLabel   = "moreid.moreline/client"
	operatorLabel = "moreid.moreline/operator"
	// allRoles is the component label, and moreid the name, of the
	// Deployment of components/all-roles.
	allRoles = "all-roles"
	// image is the one image every Moreid container runs.
	image = "moreid"
)

// overlay is a deployable variant: a directory of overlays/, or a copy of
// one with a component added to its components, as an operator would pick
// a shape (a component added to a built overlay instead would miss its
// namespace, images and ConfigMap names).
type overlay struct {
	name string
	dir  string
	add  string // a component the copy of dir adds; "" renders dir itself
	// secretsInside: the overlay generates its (credential-free) Secrets;
	// otherwise the operator creates them and none may be rendered.
	secretsInside bool
	minReplicas   int32
	// allRoles: the shape of components/all-roles, one Deployment serving
	// every role; otherwise one Deployment per role (base).
	allRoles bool
	// family groups the overlays that differ only in shape: their
	// Deployments must be the same but for the role-specific part.
	family string
}

var overlays = []overlay{
	{name: "dev", dir: "overlays/dev", secretsInside: true, minReplicas: 2, family: "dev"},
	{name: "prod", dir: "overlays/prod", minReplicas: 3, family: "prod"},
	{name: "small", dir: "overlays/small", minReplicas: 2, allRoles: true, family: "prod"},
	// The all-roles shape on dev's in-cluster stores and certificates: the
	// component composes with any overlay of the base.
	{name: "dev with all roles", dir: "overlays/dev", add: "components/all-roles", secretsInside: true, minReplicas: 2, allRoles: true, family: "dev"},
}

// deployment is the name of the Deployment serving role c.
func (ov overlay) deployment(c component) string {
	if ov.allRoles {
		return "moreid"
	}
	return "moreid-" + c.name
}

// args are what the container serving role c runs.
func (ov overlay) args(c component) []string {
	if ov.allRoles {
		return []string{"serve"}
	}
	return []string{"serve", c.name}
}

// tlsSecret is the certificate Secret of the pods serving role c.
func (ov overlay) tlsSecret(c component) string {
	if ov.allRoles {
		return "moreid-tls"
	}
	return "moreid-" + c.name + "-tls"
}

func (ov overlay) podLabel(c component) string {
	if ov.allRoles {
		return allRoles
	}
	return c.name
}

// render builds the overlay: its directory, or a copy of it in a
// temporary directory, its paths made relative to the copy, with add in its
// components.
func (ov overlay) render(t *testing.T) *manifest {
	t.Helper()
	if ov.add == "" {
		return render(t, ov.dir)
	}
	dir := t.TempDir()
	here, err := filepath.Abs(".")
	if err == nil {
		here, err = filepath.Rel(dir, here)
	}
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(ov.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(ov.dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if f.Name() == "kustomization.yaml" {
			// The overlays name the rest of deploy/ as ../../.
			k := strings.ReplaceAll(string(b), "../../", here+"/")
			if !strings.Contains(k, "\ncomponents:\n") {
				t.Fatalf("%s/kustomization.yaml has no components: to add %s to", ov.dir, ov.add)
			}
			b = []byte(strings.Replace(k, "\ncomponents:\n", "\ncomponents:\n  - "+filepath.Join(here, ov.add)+"\n", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return render(t, dir)
}

// component is one of the four roles of `moreid serve`.
type component struct {
	name        string
	grpc, admin int32    // the gRPC and admin listener ports; 0 for the gateway
	env         string   // the infix of its *_ADDR variables
	stores      []string // the credential variables it must get from a Secret
}

var components = []component{
	{name: "gateway", stores: []string{"MOREID_CSRF_KEY"}},
	{name: "auth", grpc: 9090, admin: 9190, env: "AUTH", stores: []string{"MOREID_REDIS_URL", "MOREID_POSTGRES_DSN", "MOREID_KEY_ENCRYPTION_KEY"}},
	{name: "user", grpc: 9091, admin: 9191, env: "USER", stores: []string{"MOREID_POSTGRES_DSN"}},
	{name: "apikey", grpc: 9092, admin: 9192, env: "APIKEY", stores: []string{"MOREID_POSTGRES_DSN"}},
}

// operatorSecrets are the Secrets the operator creates: name -> the key
// holding the value, and the variable that receives it.
var operatorSecrets = map[string]struct{ key, env string }{
	"moreid-postgres":       {key: "dsn", env: "MOREID_POSTGRES_DSN"},
	"moreid-postgres-owner": {key: "dsn", env: "MOREID_POSTGRES_OWNER_DSN"},
	"moreid-redis":          {key: "url", env: "MOREID_REDIS_URL"},
	"moreid-csrf":           {key: "key", env: "MOREID_CSRF_KEY"},
	"moreid-kek":            {key: "key", env: "MOREID_KEY_ENCRYPTION_KEY"},
}

func TestOverlays(t *testing.T) {
	for _, ov := range overlays {
		t.Run(ov.name, func(t *testing.T) {
			m := ov.render(t)
			cfg := config(t, m)
			t.Run("shape", func(t *testing.T) { checkShape(t, m, ov) })
			for _, c := range components {
				t.Run(c.name, func(t *testing.T) { checkComponent(t, m, cfg, ov, c) })
			}
			t.Run("probes", func(t *testing.T) { checkProbes(t, m, ov) })
			t.Run("pod security and resources", func(t *testing.T) { checkPods(t, m) })
			t.Run("migration job", func(t *testing.T) { checkMigrationJob(t, m) })
			t.Run("network policies", func(t *testing.T) { checkNetworkPolicies(t, m, ov) })
			t.Run("secrets", func(t *testing.T) { checkSecrets(t, m, ov) })
			t.Run("configmap holds no credential", func(t *testing.T) { checkConfig(t, cfg) })
			t.Run("images", func(t *testing.T) { checkImages(t, m) })
			for _, c := range components {
				t.Run("TLS of "+c.name, func(t *testing.T) { checkTLS(t, m, cfg, ov, c) })
			}
			t.Run("certificates", func(t *testing.T) { checkCertificates(t, m, cfg, ov) })
		})
	}
}

// config is the one ConfigMap every Deployment takes its settings from.
func config(t *testing.T, m *manifest) map[string]string {
	t.Helper()
	var name string
	for dn, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef == nil {
					t.Fatalf("Deployment %s: envFrom other than a ConfigMap", dn)
				}
				if name != "" && from.ConfigMapRef.Name != name {
					t.Fatalf("Deployment %s reads ConfigMap %s, another reads %s", dn, from.ConfigMapRef.Name, name)
				}
				name = from.ConfigMapRef.Name
			}
		}
	}
	cm, ok := m.configMaps[name]
	if !ok {
		t.Fatalf("the Deployments read ConfigMap %q, which the overlay does not contain", name)
	}
	return cm.Data
}

// checkShape: exactly the Deployments of the shape, and every Service of
// the per-role shape, whichever the shape (clients and moreidctl dial them).
func checkShape(t *testing.T, m *manifest, ov overlay) {
	var want []string
	for _, c := range components {
		if d := ov.deployment(c); !slices.Contains(want, d) {
			want = append(want, d)
		}
	}
	slices.Sort(want)
	if got := keys(m.deployments); !slices.Equal(got, want) {
		t.Errorf("Deployments %v, want %v", got, want)
	}
	for _, c := range components {
		if _, ok := m.services["moreid-"+c.name]; !ok {
			t.Errorf("no Service moreid-%s", c.name)
		}
	}
}

func checkComponent(t *testing.T, m *manifest, cfg map[string]string, ov overlay, c component) {
	name := ov.deployment(c)
	d, ok := m.deployments[name]
	if !ok {
		t.Fatalf("no Deployment %s serves %s", name, c.name)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("Deployment %s sets replicas (%d): its HorizontalPodAutoscaler owns the count, and every apply would reset it", name, *d.Spec.Replicas)
	}
	pod := &d.Spec.Template
	for _, v := range c.stores {
		for i := range pod.Spec.Containers {
			if secretRef(pod.Spec.Containers[i], v) == nil {
				t.Errorf("Deployment %s container %s: %s is not set from a Secret", name, pod.Spec.Containers[i].Name, v)
			}
		}
	}
	// The owner's DSN would let a service disable the audit trail's
	// triggers: only the migration Job holds it.
	for _, ctr := range containers(&pod.Spec) {
		for _, e := range ctr.Env {
			if e.Name == "MOREID_POSTGRES_OWNER_DSN" || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
				strings.HasPrefix(e.ValueFrom.SecretKeyRef.Name, "moreid-postgres-owner")) {
				t.Errorf("Deployment %s container %s holds the owner's DSN (%s)", name, ctr.Name, e.Name)
			}
		}
	}
	if pod.Labels[partOfLabel] != "moreid" || pod.Labels[componentLabel] != ov.podLabel(c) {
		t.Errorf("pod labels %v: want %s=moreid and %s=%s", pod.Labels, partOfLabel, componentLabel, ov.podLabel(c))
	}
	if !selects(d.Spec.Selector, pod.Labels) {
		t.Errorf("Deployment selector %v does not select its own pods %v", d.Spec.Selector, pod.Labels)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
		t.Fatalf("Deployment %s: %d containers and %d init containers, want 1 container", name, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
	}
	ctr := pod.Spec.Containers[0]
	if got := imageName(ctr.Image); got != image || len(ctr.Command) > 0 || !slices.Equal(ctr.Args, ov.args(c)) {
		t.Errorf("container runs image %s, command %v, args %v; want the %s image's entrypoint with %q", ctr.Image, ctr.Command, ctr.Args, image, ov.args(c))
	}
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/port"] != strconv.Itoa(metricsPort) {
		t.Errorf("pod annotations %v: want prometheus.io/scrape=true and port=%d", pod.Annotations, metricsPort)
	}
	if p, ok := namedPort(ctr, "metrics"); !ok || p != metricsPort {
		t.Errorf("container port metrics = %d (%v), want %d", p, ok, metricsPort)
	}

	// Listeners and dial targets (the probes: checkProbes).
	env := envValues(ctr)
	if c.grpc == 0 {
		if !hasPort(ctr, 8080) || env["MOREID_HTTP_ADDR"] != ":8080" {
			t.Errorf("gateway: container ports %v with MOREID_HTTP_ADDR=%q, want 8080 and \":8080\"", ctr.Ports, env["MOREID_HTTP_ADDR"])
		}
	} else {
		for _, l := range []struct {
			port int32
			env  string
		}{{c.grpc, "MOREID_" + c.env + "_ADDR"}, {c.admin, "MOREID_" + c.env + "_ADMIN_ADDR"}} {
			if !hasPort(ctr, l.port) {
				t.Errorf("no container port %d (%s)", l.port, l.env)
			}
			if want := fmt.Sprintf(":%d", l.port); env[l.env] != want {
				t.Errorf("own %s = %q, want %q (listen on every interface of the pod)", l.env, env[l.env], want)
			}
			if want := fmt.Sprintf("dns:///moreid-%s:%d", c.name, l.port); cfg[l.env] != want {
				t.Errorf("ConfigMap %s = %q, want %q (the headless Service, balanced by the gRPC client)", l.env, cfg[l.env], want)
			}
		}
	}

	// Graceful shutdown fits in the grace period. The process pauses
	// itself (MOREID_SHUTDOWN_DELAY, readiness failed, listeners serving),
	// within MOREID_DRAIN_TIMEOUT, the whole budget from SIGTERM to exit;
	// a preStop hook would come on top of it, and is not used.
	if l := ctr.Lifecycle; l != nil && l.PreStop != nil {
		t.Errorf("container %s has a preStop hook: the pause is MOREID_SHUTDOWN_DELAY", ctr.Name)
	}
	drain, err := time.ParseDuration(cfg["MOREID_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("ConfigMap MOREID_DRAIN_TIMEOUT=%q: %v", cfg["MOREID_DRAIN_TIMEOUT"], err)
	}
	delay, err := time.ParseDuration(cfg["MOREID_SHUTDOWN_DELAY"])
	if err != nil || delay <= 0 {
		t.Errorf("ConfigMap MOREID_SHUTDOWN_DELAY=%q (%v): want a pause while the endpoints are withdrawn", cfg["MOREID_SHUTDOWN_DELAY"], err)
	}
	if delay > drain/2 {
		t.Errorf("MOREID_SHUTDOWN_DELAY %s is more than half of MOREID_DRAIN_TIMEOUT %s: the process refuses to start", delay, drain)
	}
	grace := 30 * time.Second // the Kubernetes default
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= drain {
		t.Errorf("terminationGracePeriodSeconds %s: want more than MOREID_DRAIN_TIMEOUT %s (which includes MOREID_SHUTDOWN_DELAY %s)", grace, drain, delay)
	}

	// The role's Service, named as in the per-role shape in either shape:
	// it selects the pods serving the role and no other Deployment's.
	svcName := "moreid-" + c.name
	svc, ok := m.services[svcName]
	if !ok {
		t.Fatalf("no Service %s", svcName)
	}
	for dn, other := range m.deployments {
		if sel := selects(metaSelector(svc.Spec.Selector), other.Spec.Template.Labels); sel != (dn == name) {
			t.Errorf("Service %s selector %v selects the pods of Deployment %s: %v, want %v", svcName, svc.Spec.Selector, dn, sel, dn == name)
		}
	}
	ports := map[string]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p
	}
	if c.grpc == 0 {
		p := ports["http"]
		if svc.Spec.ClusterIP == corev1.ClusterIPNone || p.Port != 80 || resolvePort(ctr, p.TargetPort) != 8080 {
			t.Errorf("Service %s: clusterIP %q, http port %d -> %s; want a ClusterIP Service 80 -> 8080", svcName, svc.Spec.ClusterIP, p.Port, p.TargetPort.String())
		}
	} else {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s: clusterIP %q, want None (headless, for client-side round robin)", svcName, svc.Spec.ClusterIP)
		}
		for port, want := range map[string]int32{"grpc": c.grpc, "admin": c.admin} {
			if p := ports[port]; p.Port != want || resolvePort(ctr, p.TargetPort) != want {
				t.Errorf("Service %s port %s: %d -> %s, want %d -> %d", svcName, port, p.Port, p.TargetPort.String(), want, want)
			}
		}
	}

	// Disruption budget and autoscaler.
	var pdbs int
	for pn, pdb := range m.pdbs {
		if !selects(pdb.Spec.Selector, pod.Labels) {
			continue
		}
		pdbs++
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.String() != "1" {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, want 1", pn, pdb.Spec.MinAvailable)
		}
	}
	if pdbs != 1 {
		t.Errorf("%d PodDisruptionBudgets select the pods of %s, want 1", pdbs, name)
	}
	var hpa *autoscalingv2.HorizontalPodAutoscaler
	for _, h := range m.hpas {
		if r := h.Spec.ScaleTargetRef; r.Kind == "Deployment" && r.APIVersion == "apps/v1" && r.Name == name {
			hpa = h
		}
	}
	if hpa == nil {
		t.Fatalf("no HorizontalPodAutoscaler scales Deployment %s", name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != ov.minReplicas || hpa.Spec.MaxReplicas < ov.minReplicas {
		t.Errorf("HorizontalPodAutoscaler %s: replicas %v..%d, want at least %d (so the PodDisruptionBudget leaves one running)", hpa.Name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, ov.minReplicas)
	}
	cpu := slices.ContainsFunc(hpa.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Type == autoscalingv2.ResourceMetricSourceType && ms.Resource != nil && ms.Resource.Name == corev1.ResourceCPU &&
			ms.Resource.Target.Type == autoscalingv2.UtilizationMetricType && ms.Resource.Target.AverageUtilization != nil
	})
	if !cpu {
		t.Errorf("HorizontalPodAutoscaler %s: no CPU utilization target", hpa.Name)
	}
}

// TestDeploymentsDifferOnlyInRole: within each family of overlays (the
// same overlay in either shape) every Deployment serving roles is the same
// as the others once its role-specific part is blanked (roleNeutral).
func TestDeploymentsDifferOnlyInRole(t *testing.T) {
	ref := map[string]string{} // family -> the first Deployment's neutral YAML
	from := map[string]string{}
	for _, ov := range overlays {
		m := ov.render(t)
		for _, name := range keys(m.deployments) {
			got := neutralYAML(t, m.deployments[name])
			where := ov.name + " Deployment " + name
			want, ok := ref[ov.family]
			if !ok {
				ref[ov.family], from[ov.family] = got, where
				continue
			}
			if got != want {
				t.Errorf("%s differs from %s in more than its role:\n%s", where, from[ov.family], lineDiff(want, got))
			}
		}
	}
}

// roleNeutral is d with its role-specific part blanked, which is: the name
// and labels (metadata, selector, pod template, spread constraint); the
// container's args, ports, probes and resources; the variables that name
// the role's own listeners (MOREID_HTTP_ADDR, MOREID_<ROLE>_ADDR,
// _ADMIN_ADDR, _HEALTH_ADDR, and MOREID_GATEWAY_CIDRS, the in-process
// gateway's) and the Secrets it reads (each role only its own, least
// privilege); and the name of its TLS certificate Secret (one identity per
// role). Everything else (image, envFrom but for the ConfigMap's content
// hash, TLS paths, mounts, security
// contexts, grace period, strategy) must be the same for every role.
func roleNeutral(d *appsv1.Deployment) *appsv1.Deployment {
	d = d.DeepCopy()
	d.ObjectMeta = metav1.ObjectMeta{Namespace: d.Namespace}
	d.Spec.Selector = nil
	spec := &d.Spec.Template.Spec
	d.Spec.Template.Labels = nil
	for i := range spec.TopologySpreadConstraints {
		spec.TopologySpreadConstraints[i].LabelSelector = nil
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		// The ConfigMap's content hash is the overlay's, not the role's.
		for _, from := range c.EnvFrom {
			if r := from.ConfigMapRef; r != nil {
				r.Name = kustomizeHash.ReplaceAllString(r.Name, "")
			}
		}
		c.Args, c.Ports = nil, nil
		c.StartupProbe, c.ReadinessProbe, c.LivenessProbe = nil, nil, nil
		c.Resources = corev1.ResourceRequirements{}
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool {
			return roleEnv.MatchString(e.Name) || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
		})
		slices.SortFunc(c.Env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	}
	for i := range spec.Volumes {
		if v := &spec.Volumes[i]; v.Name == "tls" && v.Secret != nil {
			v.Secret.SecretName = ""
		}
	}
	return d
}

var kustomizeHash = regexp.MustCompile(`-[a-z0-9]{10}$`)

var roleEnv = regexp.MustCompile(`^MOREID_(HTTP_ADDR|(AUTH|USER|APIKEY)_(ADDR|ADMIN_ADDR|HEALTH_ADDR)|GATEWAY_CIDRS)$`)

func neutralYAML(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	out, err := yaml.Marshal(roleNeutral(d))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range keys(count) {
		for n := count[l]; n > 0; n-- {
			fmt.Fprintf(&b, "-%s\n", l)
		}
		for n := count[l]; n < 0; n++ {
			fmt.Fprintf(&b, "+%s\n", l)
		}
	}
	return b.String()
}

// TestRoleNeutral: the comparison ignores exactly the role-specific part.
func TestRoleNeutral(t *testing.T) {
	auth := render(t, "overlays/prod").deployments["moreid-auth"]
	if auth == nil {
		t.Fatal("overlays/prod renders no Deployment moreid-auth")
	}
	ctr := func(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }
	tests := []struct {
		name   string
		change func(d *appsv1.Deployment)
		same   bool
	}{
		{"args", func(d *appsv1.Deployment) { ctr(d).Args = []string{"serve", "user"} }, true},
		{"labels", func(d *appsv1.Deployment) { d.Spec.Template.Labels[componentLabel] = "user" }, true},
		{"resources", func(d *appsv1.Deployment) { ctr(d).Resources = corev1.ResourceRequirements{} }, true},
		{"own listener", func(d *appsv1.Deployment) { ctr(d).Env[0].Value = ":1" }, true},
		{"its Secrets", func(d *appsv1.Deployment) {
			ctr(d).Env = slices.DeleteFunc(ctr(d).Env, func(e corev1.EnvVar) bool { return e.ValueFrom != nil })
		}, true},
		{"TLS Secret", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Volumes[0].Secret.SecretName = "other" }, true},
		{"image", func(d *appsv1.Deployment) { ctr(d).Image = "moreid/auth:1" }, false},
		{"grace period", func(d *appsv1.Deployment) { d.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64) }, false},
		{"root filesystem", func(d *appsv1.Deployment) { *ctr(d).SecurityContext.ReadOnlyRootFilesystem = false }, false},
		{"TLS path", func(d *appsv1.Deployment) {
			ctr(d).Env = append(ctr(d).Env, corev1.EnvVar{Name: "MOREID_TLS_CERT", Value: "/tmp/c"})
		}, false},
		{"a setting", func(d *appsv1.Deployment) {
			ctr(d).Env = append(ctr(d).Env, corev1.EnvVar{Name: "MOREID_PPROF", Value: "1"})
		}, false},
	}
	want := neutralYAML(t, auth)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := auth.DeepCopy()
			tt.change(d)
			if same := neutralYAML(t, d) == want; same != tt.same {
				t.Errorf("same after changing the %s = %v, want %v", tt.name, same, tt.same)
			}
		})
	}
}

// checkProbes: readiness follows only the pod's own dependency and fails
// on SIGTERM; liveness never follows a dependency (a Postgres or Redis
// outage must make pods unready, not restart them all).
func checkProbes(t *testing.T, m *manifest, ov overlay) {
	for _, c := range components {
		d := m.deployments[ov.deployment(c)]
		if d == nil {
			continue // checkShape reports it
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		env := envValues(ctr)
		health := healthAddrs(env)
		switch {
		case ov.allRoles:
			// One process, one readiness probe: auth's health listener
			// (Redis), the only one set, so that no two share the port.
			if want := map[string]string{"MOREID_AUTH_HEALTH_ADDR": fmt.Sprintf(":%d", healthPort)}; !equalMaps(health, want) {
				t.Errorf("health listeners %v, want %v", health, want)
			}
			checkGRPCProbe(t, ctr.ReadinessProbe)
			checkHTTPProbe(t, "liveness", ctr, ctr.LivenessProbe, "/healthz", 8080)
		case c.grpc == 0:
			checkHTTPProbe(t, "readiness", ctr, ctr.ReadinessProbe, "/readyz", 8080)
			checkHTTPProbe(t, "liveness", ctr, ctr.LivenessProbe, "/healthz", 8080)
			if len(health) > 0 {
				t.Errorf("gateway: health listeners %v, want none", health)
			}
		default:
			if want := map[string]string{"MOREID_" + c.env + "_HEALTH_ADDR": fmt.Sprintf(":%d", healthPort)}; !equalMaps(health, want) {
				t.Errorf("%s: health listeners %v, want %v", c.name, health, want)
			}
			if !hasPort(ctr, healthPort) {
				t.Errorf("%s: no container port %d", c.name, healthPort)
			}
			checkGRPCProbe(t, ctr.ReadinessProbe)
			if p := ctr.LivenessProbe; p == nil || p.TCPSocket == nil || resolvePort(ctr, p.TCPSocket.Port) != c.grpc {
				t.Errorf("%s: liveness probe %+v, want a TCP check of the gRPC port %d", c.name, p, c.grpc)
			}
		}
	}
}

func checkGRPCProbe(t *testing.T, p *corev1.Probe) {
	t.Helper()
	if p == nil || p.GRPC == nil || p.GRPC.Port != healthPort || (p.GRPC.Service != nil && *p.GRPC.Service != "") {
		t.Errorf("readiness probe %+v: want the gRPC health check (service \"\") on the health port %d", p, healthPort)
	}
}

var healthAddr = regexp.MustCompile(`^MOREID_[A-Z]+_HEALTH_ADDR$`)

func healthAddrs(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if healthAddr.MatchString(k) && v != "" {
			out[k] = v
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkHTTPProbe(t *testing.T, kind string, ctr corev1.Container, p *corev1.Probe, path string, port int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || resolvePort(ctr, p.HTTPGet.Port) != port {
		t.Errorf("%s probe %+v: want GET %s on port %d", kind, p, path, port)
	}
}

// checkPods holds every container of every workload to the restricted Pod
// Security Standard, a read-only root filesystem and bounded resources.
func checkPods(t *testing.T, m *manifest) {
	pods := m.pods()
	if len(pods) == 0 {
		t.Fatal("no workloads rendered")
	}
	for _, p := range pods {
		spec := &p.spec.Spec
		psc := spec.SecurityContext
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false (no component talks to the API server)", p.owner)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: shares a host namespace", p.owner)
		}
		for _, c := range containers(spec) {
			where := p.owner + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
				(sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsUser == nil && psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) {
				t.Errorf("%s: runs as uid 0", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v, want drop [ALL] and nothing added", where, sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil && psc != nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile %+v, want RuntimeDefault", where, seccomp)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				switch {
				case !okReq || !okLim || req.IsZero() || lim.IsZero():
					t.Errorf("%s: %s request %v / limit %v, want both", where, r, req.String(), lim.String())
				case req.Cmp(lim) > 0:
					t.Errorf("%s: %s request %s above its limit %s", where, r, req.String(), lim.String())
				}
			}
		}
	}
}

// checkMigrationJob: one Job, one container: moreid migrate, as the owner.
func checkMigrationJob(t *testing.T, m *manifest) {
	j, ok := m.jobs["moreid-migrate"]
	if !ok {
		t.Fatal("no Job moreid-migrate")
	}
	spec := j.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q", spec.RestartPolicy)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 {
		t.Errorf("backoffLimit %v: a Postgres still starting must be retried", j.Spec.BackoffLimit)
	}
	if len(spec.InitContainers) != 0 || len(spec.Containers) != 1 {
		t.Fatalf("%d init containers and %d containers, want one container", len(spec.InitContainers), len(spec.Containers))
	}
	c := spec.Containers[0]
	if imageName(c.Image) != image || len(c.Command) > 0 || !slices.Equal(c.Args, []string{"migrate"}) {
		t.Errorf("container %s runs image %s, command %v, args %v; want the %s image's entrypoint with [migrate]", c.Name, c.Image, c.Command, c.Args, image)
	}
	for _, v := range []string{"MOREID_POSTGRES_DSN", "MOREID_POSTGRES_OWNER_DSN"} {
		if ref := secretRef(c, v); ref == nil {
			t.Errorf("container %s: %s not from a Secret", c.Name, v)
		}
	}
}

// source is a pod that tries to connect.
type source struct {
	name          string
	sameNamespace bool
	nsLabels      map[string]string
	labels        map[string]string
}

// checkNetworkPolicies evaluates the policies the way the network plugin
// does (a pod selected by any policy admits only what some rule allows) for
// the connections that must and must not work.
func checkNetworkPolicies(t *testing.T, m *manifest, ov overlay) {
	var deny bool
	for name, p := range m.policies {
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s: policyTypes %v lack Ingress", name, p.Spec.PolicyTypes)
		}
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 && len(p.Spec.Ingress) == 0 {
			deny = true
		}
		for _, r := range p.Spec.Ingress {
			if len(r.From) == 0 {
				ports := rulePorts(r)
				if c := p.Spec.PodSelector.MatchLabels[componentLabel]; (c != "gateway" && c != allRoles) || !slices.Equal(ports, []string{"8080"}) {
					t.Errorf("NetworkPolicy %s admits any source to ports %v: only the gateway's HTTP port 8080 may", name, ports)
				}
			}
			for _, peer := range r.From {
				if peer.IPBlock != nil {
					t.Errorf("NetworkPolicy %s: ipBlock peer %v", name, peer.IPBlock)
				}
			}
		}
	}
	if !deny {
		t.Error("no default-deny NetworkPolicy (empty podSelector, Ingress, no rules)")
	}
	// A policy whose pods do not exist guards nothing: the shape's pods
	// would be left to the default deny, or to no rule at all.
	for name, p := range m.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 {
			continue
		}
		if !slices.ContainsFunc(m.pods(), func(pt podTemplate) bool { return selects(&p.Spec.PodSelector, pt.spec.Labels) }) {
			t.Errorf("NetworkPolicy %s selects %v, which no pod template carries", name, p.Spec.PodSelector)
		}
	}

	// pod is the labels of the pods serving role c (or of the migration
	// Job, Postgres, Redis): in the all-roles shape one pod serves all four.
	roleLabel := func(c string) string {
		if ov.allRoles && slices.ContainsFunc(components, func(r component) bool { return r.name == c }) {
			return allRoles
		}
		return c
	}
	pod := func(c string) map[string]string {
		p := m.podOf(roleLabel(c))
		if p == nil {
			t.Fatalf("no pod template with %s=%s", componentLabel, roleLabel(c))
		}
		return p.Labels
	}
	var (
		gateway = source{"the gateway", true, nil, pod("gateway")}
		auth    = source{"auth", true, nil, pod("auth")}
		user    = source{"user", true, nil, pod("user")}
		apikey  = source{"apikey", true, nil, pod("apikey")}
		migrate = source{"the migration job", true, nil, pod("migrate")}
		// A pod of the namespace that is not part of the suite (moreidctl, a debug pod).
		stranger = source{"another pod of the namespace", true, nil, map[string]string{"run": "moreidctl"}}
		// A pod elsewhere wearing the suite's labels.
		lookalike = source{"a look-alike in another namespace", false, map[string]string{"kubernetes.io/metadata.name": "elsewhere"}, pod("gateway")}
		// Internal callers of AuthService, here and in another namespace.
		client       = source{"a labelled internal caller", true, nil, map[string]string{"app": "billing", clientLabel: "true"}}
		remoteCaller = source{"a labelled internal caller in another namespace", false, map[string]string{"kubernetes.io/metadata.name": "billing"}, map[string]string{"app": "billing", clientLabel: "true"}}
		// moreidctl run by an operator in the namespace, and the same label elsewhere.
		operator       = source{"an operator pod", true, nil, map[string]string{"run": "moreidctl", operatorLabel: "true"}}
		remoteOperator = source{"an operator label in another namespace", false, map[string]string{"kubernetes.io/metadata.name": "elsewhere"}, map[string]string{operatorLabel: "true"}}
	)
	type check struct {
		to     string
		port   int32
		from   source
		admits bool
	}
	checks := []check{
		{"gateway", 8080, lookalike, true},
		{"gateway", 8080, stranger, true},
		{"gateway", metricsPort, stranger, true},
		{"gateway", metricsPort, lookalike, false},
		{"gateway", 9090, stranger, false},
		{"auth", 9090, client, true},
		{"auth", 9090, remoteCaller, true},
		{"auth", 9090, operator, false},
		{"user", 9091, client, false},
		{"apikey", 9092, client, false},
	}
	if ov.allRoles {
		// The roles call each other in process: no rule lets the pod reach
		// its own user and apikey ports, nor auth's as a component.
		checks = append(checks,
			check{"auth", 9090, gateway, false},
			check{"user", 9091, auth, false},
			check{"apikey", 9092, auth, false},
		)
	} else {
		checks = append(checks,
			check{"auth", 9090, gateway, true},
			check{"user", 9091, auth, true},
			check{"apikey", 9092, auth, true},
			check{"gateway", 9090, client, false},
		)
	}
	for _, c := range components[1:] {
		checks = append(checks,
			check{c.name, c.grpc, stranger, false},
			check{c.name, c.grpc, lookalike, false},
			check{c.name, c.grpc, migrate, false},
			// Admin ports: operators of this namespace only.
			check{c.name, c.admin, operator, true},
			check{c.name, c.admin, stranger, false},
			check{c.name, c.admin, client, false},
			check{c.name, c.admin, remoteOperator, false},
			check{c.name, c.admin, gateway, false},
			check{c.name, c.admin, auth, false},
			check{c.name, c.admin, lookalike, false},
			check{c.name, metricsPort, stranger, true},
			check{c.name, metricsPort, lookalike, false},
		)
		if !ov.allRoles { // else the gateway's port of the same pod
			checks = append(checks, check{c.name, 8080, stranger, false})
		}
	}
	for _, c := range []string{"gateway", "auth", "user", "apikey", "migrate"} {
		checks = append(checks, check{c, 5432, stranger, false})
	}
	// In-cluster stores (dev): reachable only by their users.
	if m.podOf("postgres") != nil {
		checks = append(checks,
			check{"postgres", 5432, user, true},
			check{"postgres", 5432, apikey, true},
			check{"postgres", 5432, migrate, true},
			check{"postgres", 5432, auth, true}, // the audit trail
			check{"postgres", 5432, stranger, false},
			check{"postgres", 5432, lookalike, false},
		)
	}
	if m.podOf("postgres") != nil && !ov.allRoles {
		checks = append(checks, check{"postgres", 5432, gateway, false})
	}
	if m.podOf("redis") != nil && !ov.allRoles {
		checks = append(checks, check{"redis", 6379, gateway, false}, check{"redis", 6379, user, false})
	}
	if m.podOf("redis") != nil {
		checks = append(checks,
			check{"redis", 6379, auth, true},
			check{"redis", 6379, stranger, false},
			check{"redis", 6379, lookalike, false},
		)
	}
	for _, c := range checks {
		target := m.podOf(roleLabel(c.to))
		if target == nil {
			t.Errorf("no pod template for %s", c.to)
			continue
		}
		if got := admits(m, target, c.port, c.from); got != c.admits {
			t.Errorf("%s -> %s:%d admitted = %v, want %v", c.from.name, c.to, c.port, got, c.admits)
		}
	}
}

// admits reports whether the policies let src connect to port of the pod.
func admits(m *manifest, target *corev1.PodTemplateSpec, port int32, src source) bool {
	isolated := false
	for _, p := range m.policies {
		if !selects(&p.Spec.PodSelector, target.Labels) || !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for _, r := range p.Spec.Ingress {
			if !coversPort(r, target, port) {
				continue
			}
			if len(r.From) == 0 {
				return true
			}
			for _, peer := range r.From {
				if peerMatches(peer, src) {
					return true
				}
			}
		}
	}
	return !isolated
}

func coversPort(r networkingv1.NetworkPolicyIngressRule, target *corev1.PodTemplateSpec, port int32) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if p.Port == nil {
			return true
		}
		for _, c := range target.Spec.Containers {
			if resolvePort(c, *p.Port) == port {
				return true
			}
		}
	}
	return false
}

func peerMatches(peer networkingv1.NetworkPolicyPeer, src source) bool {
	switch {
	case peer.IPBlock != nil:
		return false // checked separately: no policy admits by address
	case peer.NamespaceSelector != nil:
		return selects(peer.NamespaceSelector, src.nsLabels) && (peer.PodSelector == nil || selects(peer.PodSelector, src.labels))
	case peer.PodSelector != nil:
		return src.sameNamespace && selects(peer.PodSelector, src.labels)
	}
	return false
}

func rulePorts(r networkingv1.NetworkPolicyIngressRule) []string {
	if len(r.Ports) == 0 {
		return []string{"all"}
	}
	var out []string
	for _, p := range r.Ports {
		if p.Port == nil {
			out = append(out, "all")
			continue
		}
		out = append(out, p.Port.String())
	}
	return out
}

var credentialName = regexp.MustCompile(`(?i)(DSN|REDIS_URL|PASSWORD|PASSWD|SECRET|_TOKEN$|_KEY$)`)

// checkSecrets: credentials reach the processes only through secretKeyRef,
// and no rendered Secret holds one.
func checkSecrets(t *testing.T, m *manifest, ov overlay) {
	inside := ov.secretsInside
	if !inside && len(m.secrets) > 0 {
		t.Errorf("Secrets rendered %v: this overlay's Secrets are created by the operator, never committed", keys(m.secrets))
	}
	for name, s := range m.secrets {
		for k, v := range s.Data {
			if credentialLike(string(v)) {
				t.Errorf("Secret %s key %s holds a credential", name, k)
			}
		}
		for k, v := range s.StringData {
			if credentialLike(v) {
				t.Errorf("Secret %s key %s holds a credential", name, k)
			}
		}
	}
	refs := 0
	for _, p := range m.pods() {
		for _, c := range containers(&p.spec.Spec) {
			for _, e := range c.Env {
				if !credentialName.MatchString(e.Name) {
					continue
				}
				if e.ValueFrom == nil && inSecretVolume(&p.spec.Spec, c, e.Value) {
					continue // the path of a key file (MOREID_TLS_KEY), which a Secret supplies
				}
				ref := secretRef(c, e.Name)
				if ref == nil || e.Value != "" {
					t.Errorf("%s container %s: %s is not from a secretKeyRef", p.owner, c.Name, e.Name)
					continue
				}
				refs++
				base := ref.Name
				if s, ok := m.secrets[ref.Name]; ok {
					// A generated Secret: kustomize appends a content hash.
					base = strings.TrimSuffix(ref.Name, ref.Name[strings.LastIndex(ref.Name, "-"):])
					if _, ok := s.Data[ref.Key]; !ok {
						t.Errorf("%s container %s: %s refers to Secret %s key %s, which it lacks", p.owner, c.Name, e.Name, ref.Name, ref.Key)
					}
				} else if inside {
					t.Errorf("%s container %s: %s refers to Secret %s, which the overlay does not generate", p.owner, c.Name, e.Name, ref.Name)
				}
				if want, ok := operatorSecrets[base]; !ok || want.key != ref.Key || want.env != e.Name {
					t.Errorf("%s container %s: %s from Secret %s key %s; the documented Secrets are %v", p.owner, c.Name, e.Name, ref.Name, ref.Key, operatorSecrets)
				}
			}
		}
	}
	// Per role: gateway, user, apikey, auth (three); all roles: four; and
	// the migration container's two.
	want := 8
	if ov.allRoles {
		want = 6
	}
	if refs != want {
		t.Errorf("%d secretKeyRef variables, want %d", refs, want)
	}
}

func checkConfig(t *testing.T, cfg map[string]string) {
	for k, v := range cfg {
		if credentialName.MatchString(k) {
			t.Errorf("ConfigMap key %s names a credential: it belongs in a Secret", k)
		}
		if credentialLike(v) {
			t.Errorf("ConfigMap %s holds a credential", k)
		}
	}
}

// credentialLike reports a URL or DSN with a password in it.
func credentialLike(v string) bool {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	lower := strings.ToLower(v)
	return strings.Contains(lower, "password=") || strings.Contains(lower, "pass=")
}

// checkImages: every image names a tag other than latest, so a rollout is
// reproducible and the kubelet does not pull on every start; and every
// Moreid container (Deployments, the Job) runs the one image.
func checkImages(t *testing.T, m *manifest) {
	for _, p := range m.pods() {
		for _, c := range containers(&p.spec.Spec) {
			ref := c.Image
			if i := strings.LastIndex(ref, "@"); i >= 0 {
				continue // pinned by digest
			}
			slash := strings.LastIndex(ref, "/")
			colon := strings.LastIndex(ref, ":")
			if colon < 0 || colon < slash || ref[colon+1:] == "latest" {
				t.Errorf("%s container %s: image %s has no tag (or latest)", p.owner, c.Name, ref)
			}
		}
	}
	var one string
	for _, p := range m.pods() {
		if strings.HasPrefix(p.owner, "StatefulSet ") {
			continue // the dev stores
		}
		for _, c := range containers(&p.spec.Spec) {
			if one == "" {
				one = c.Image
			}
			if imageName(c.Image) != image || c.Image != one {
				t.Errorf("%s container %s: image %s, want the one image %s (%s)", p.owner, c.Name, c.Image, image, one)
			}
		}
	}
}

// checkTLS: every Deployment gets its certificate, key and the components'
// CA from the Secret moreid-<component>-tls (mounted read-only), the gRPC
// components the operators' CA (only its certificate) from
// moreid-operator-ca; nothing switches plaintext or the profiler on.
func checkTLS(t *testing.T, m *manifest, cfg map[string]string, ov overlay, c component) {
	for _, k := range []string{"MOREID_ALLOW_PLAINTEXT", "MOREID_PPROF"} {
		if v := cfg[k]; v != "" && v != "0" {
			t.Errorf("ConfigMap %s=%q: must stay off in a deployment", k, v)
		}
	}
	d, ok := m.deployments[ov.deployment(c)]
	if !ok {
		t.Fatalf("no Deployment %s", ov.deployment(c))
	}
	spec := &d.Spec.Template.Spec
	ctr := spec.Containers[0]
	env := envValues(ctr)
	for _, k := range []string{"MOREID_ALLOW_PLAINTEXT", "MOREID_PPROF"} {
		if v := env[k]; v != "" && v != "0" {
			t.Errorf("%s=%q: must stay off in a deployment", k, v)
		}
	}
	files := map[string]string{
		"MOREID_TLS_CERT": ov.tlsSecret(c),
		"MOREID_TLS_KEY":  ov.tlsSecret(c),
		"MOREID_TLS_CA":   ov.tlsSecret(c),
		// The gateway role has no admin listener; it gets the CA all the
		// same, so that every role's pod template is the same.
		"MOREID_ADMIN_CLIENT_CA": "moreid-operator-ca",
	}
	for k, secretName := range files {
		path := env[k]
		v := secretVolumeOf(spec, ctr, path)
		switch {
		case path == "":
			t.Errorf("%s is not set: the gRPC links would be plaintext", k)
		case v == nil:
			t.Errorf("%s=%s is not in a read-only Secret volume", k, path)
		case v.SecretName != secretName:
			t.Errorf("%s=%s comes from Secret %s, want %s", k, path, v.SecretName, secretName)
		}
	}
	if v := secretVolumeOf(spec, ctr, env["MOREID_ADMIN_CLIENT_CA"]); v != nil {
		if len(v.Items) != 1 || v.Items[0].Key != "ca.crt" {
			t.Errorf("the operators' CA volume mounts %v: want only the key ca.crt (never the CA's private key)", v.Items)
		}
	}
	if psc := spec.SecurityContext; psc == nil || psc.FSGroup == nil || psc.RunAsGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
		t.Errorf("pod securityContext %+v: want fsGroup = runAsGroup, so the process can read its key", psc)
	}
}

// checkCertificates: where the overlay issues the certificates (dev, with
// cert-manager), every Secret the Deployments mount is a Certificate's, each
// component's from the components' CA and the operators' CA another one;
// elsewhere the operator supplies the Secrets and none is issued here.
func checkCertificates(t *testing.T, m *manifest, cfg map[string]string, ov overlay) {
	inside := ov.secretsInside
	// auth's gRPC port admits labelled internal callers from the pod
	// network, so the pod CIDR alone cannot say who is a gateway.
	gatewayNames := strings.Split(cfg["MOREID_GATEWAY_NAMES"], ",")
	if cfg["MOREID_GATEWAY_NAMES"] == "" {
		t.Errorf("ConfigMap MOREID_GATEWAY_NAMES is empty: any caller in MOREID_GATEWAY_CIDRS could set the client IP")
	}
	if !inside {
		if len(m.certificates) > 0 || len(m.issuers) > 0 {
			t.Errorf("certificates %v rendered: this overlay's Secrets come from the operator", keys(m.certificates))
		}
		return
	}
	bySecret := map[string]*certificate{}
	for _, c := range m.certificates {
		bySecret[c.Spec.SecretName] = c
	}
	caOf := func(c *certificate) string {
		is, ok := m.issuers[c.Spec.IssuerRef.Name]
		if !ok || c.Spec.IssuerRef.Kind != "Issuer" {
			t.Errorf("Certificate %s: issuer %+v not rendered", c.Name, c.Spec.IssuerRef)
			return ""
		}
		if is.Spec.CA == nil {
			return "self-signed"
		}
		if ca := bySecret[is.Spec.CA.SecretName]; ca == nil || !ca.Spec.IsCA {
			t.Errorf("Issuer %s: CA Secret %s is not an isCA Certificate's", is.Name, is.Spec.CA.SecretName)
		}
		return is.Spec.CA.SecretName
	}
	var componentsCA string
	for _, c := range components {
		cert := bySecret[ov.tlsSecret(c)]
		if cert == nil {
			t.Errorf("no Certificate issues Secret %s, which the pods serving %s mount", ov.tlsSecret(c), c.name)
			continue
		}
		ca := caOf(cert)
		if componentsCA == "" {
			componentsCA = ca
		} else if ca != componentsCA {
			t.Errorf("Certificate %s from CA %s, the others from %s: one components' CA", cert.Name, ca, componentsCA)
		}
		if !slices.Contains(cert.Spec.Usages, "client auth") {
			t.Errorf("Certificate %s: usages %v lack client auth", cert.Name, cert.Spec.Usages)
		}
		// The all-roles gateway calls auth in process: no certificate
		// vouches for it.
		if c.name == "gateway" && !ov.allRoles {
			for _, n := range gatewayNames {
				if !slices.Contains(cert.Spec.DNSNames, n) {
					t.Errorf("Certificate %s: names %v lack %q of MOREID_GATEWAY_NAMES: auth would ignore the client IPs it forwards", cert.Name, cert.Spec.DNSNames, n)
				}
			}
		}
		if c.grpc != 0 && (!slices.Contains(cert.Spec.Usages, "server auth") || !slices.Contains(cert.Spec.DNSNames, "moreid-"+c.name)) {
			t.Errorf("Certificate %s: usages %v, names %v; want server auth for the name callers dial, moreid-%s", cert.Name, cert.Spec.Usages, cert.Spec.DNSNames, c.name)
		}
	}
	op := bySecret["moreid-operator-ca"]
	if op == nil || !op.Spec.IsCA {
		t.Fatalf("no isCA Certificate issues Secret moreid-operator-ca")
	}
	if componentsCA == "" || componentsCA == "moreid-operator-ca" {
		t.Errorf("the components' certificates come from %q: want a CA other than the operators'", componentsCA)
	}
	for _, p := range m.pods() {
		for _, v := range p.spec.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			if _, generated := m.secrets[v.Secret.SecretName]; !generated && bySecret[v.Secret.SecretName] == nil {
				t.Errorf("%s mounts Secret %s, which nothing in the overlay creates", p.owner, v.Secret.SecretName)
			}
		}
	}
}

// secretVolumeOf is the Secret volume whose read-only mount in c holds
// path, or nil.
func secretVolumeOf(spec *corev1.PodSpec, c corev1.Container, path string) *corev1.SecretVolumeSource {
	if !strings.HasPrefix(path, "/") {
		return nil
	}
	for _, vm := range c.VolumeMounts {
		if !vm.ReadOnly || !strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				return v.Secret
			}
		}
	}
	return nil
}

func inSecretVolume(spec *corev1.PodSpec, c corev1.Container, path string) bool {
	return secretVolumeOf(spec, c, path) != nil
}

func envValues(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func secretRef(c corev1.Container, name string) *corev1.SecretKeySelector {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func hasPort(c corev1.Container, port int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
}

func namedPort(c corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// resolvePort is the number of a port given by number or by container
// port name; 0 when the name is unknown.
func resolvePort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	n, _ := namedPort(c, p.StrVal)
	return n
}

// imageName is the last path element of an image reference without tag or
// digest: "registry.example.com/moreid/user:1.0" -> "user".
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	ref = path.Base(ref)
	if i := strings.Index(ref, ":"); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
