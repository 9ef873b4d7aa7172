package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifest is one overlay rendered by kustomize, every object decoded into
// its Kubernetes API type and indexed by name.
type manifest struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	jobs         map[string]*batchv1.Job
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	namespaces   map[string]*corev1.Namespace
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies     map[string]*networkingv1.NetworkPolicy
	certificates map[string]*certificate
	issuers      map[string]*issuer
}

// certificate is the part of cert-manager's Certificate (cert-manager.io/v1)
// the manifests use; a field outside it fails the strict decoding.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		CommonName  string   `json:"commonName,omitempty"`
		IsCA        bool     `json:"isCA,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// issuer is cert-manager's Issuer, self-signed or a CA.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// kinds are the only objects the manifests may contain: anything else (a
// typo in apiVersion, a kind nobody reviewed) fails the test.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1 StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"batch/v1 Job":                           func() any { return new(batchv1.Job) },
	"v1 Service":                             func() any { return new(corev1.Service) },
	"v1 ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                              func() any { return new(corev1.Secret) },
	"v1 Namespace":                           func() any { return new(corev1.Namespace) },
	"policy/v1 PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1 NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"cert-manager.io/v1 Certificate":         func() any { return new(certificate) },
	"cert-manager.io/v1 Issuer":              func() any { return new(issuer) },
}

// render builds the kustomization in dir (relative to this package) with
// the kustomize Go API, the same library `kubectl kustomize` embeds, so the
// test needs no kubectl binary; then decodes its output.
func render(t *testing.T, dir string) *manifest {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m, err := decode(out)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return m
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode splits a multi-document YAML stream and decodes every document
// strictly: duplicate keys, unknown fields and unknown kinds are errors.
func decode(stream []byte) (*manifest, error) {
	m := &manifest{
		deployments:  map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		jobs:         map[string]*batchv1.Job{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
		namespaces:   map[string]*corev1.Namespace{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
		hpas:         map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		policies:     map[string]*networkingv1.NetworkPolicy{},
		certificates: map[string]*certificate{},
		issuers:      map[string]*issuer{},
	}
	for i, doc := range separator.Split(string(stream), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, err := decodeObject([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if err := m.add(obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return m, nil
}

func decodeObject(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("apiVersion and kind: %w", err)
	}
	newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected object %s %s: add it to kinds (and to the checks) if it is meant to be there", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

func (m *manifest) add(obj any) error {
	name := obj.(metav1.Object).GetName()
	if name == "" {
		return fmt.Errorf("%T without a name", obj)
	}
	var dup bool
	switch o := obj.(type) {
	case *appsv1.Deployment:
		dup = put(m.deployments, name, o)
	case *appsv1.StatefulSet:
		dup = put(m.statefulSets, name, o)
	case *batchv1.Job:
		dup = put(m.jobs, name, o)
	case *corev1.Service:
		dup = put(m.services, name, o)
	case *corev1.ConfigMap:
		dup = put(m.configMaps, name, o)
	case *corev1.Secret:
		dup = put(m.secrets, name, o)
	case *corev1.Namespace:
		dup = put(m.namespaces, name, o)
	case *policyv1.PodDisruptionBudget:
		dup = put(m.pdbs, name, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		dup = put(m.hpas, name, o)
	case *networkingv1.NetworkPolicy:
		dup = put(m.policies, name, o)
	case *certificate:
		dup = put(m.certificates, name, o)
	case *issuer:
		dup = put(m.issuers, name, o)
	default:
		return fmt.Errorf("no index for %T", obj)
	}
	if dup {
		return fmt.Errorf("two %T named %s", obj, name)
	}
	return nil
}

func put[T any](index map[string]T, name string, v T) (dup bool) {
	_, dup = index[name]
	index[name] = v
	return dup
}

// podTemplate is a pod template and what owns it, e.g. "Deployment moreid-user".
type podTemplate struct {
	owner string
	spec  *corev1.PodTemplateSpec
}

// pods are the pod templates of every Deployment, StatefulSet and Job.
func (m *manifest) pods() []podTemplate {
	var out []podTemplate
	for name, d := range m.deployments {
		out = append(out, podTemplate{"Deployment " + name, &d.Spec.Template})
	}
	for name, s := range m.statefulSets {
		out = append(out, podTemplate{"StatefulSet " + name, &s.Spec.Template})
	}
	for name, j := range m.jobs {
		out = append(out, podTemplate{"Job " + name, &j.Spec.Template})
	}
	return out
}

// podOf is the pod template labelled with component, or nil.
func (m *manifest) podOf(component string) *corev1.PodTemplateSpec {
	for _, p := range m.pods() {
		if p.spec.Labels[componentLabel] == component {
			return p.spec
		}
	}
	return nil
}

func containers(spec *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
}

// selects reports whether the label selector s selects labels; a nil
// selector selects nothing, an empty one everything.
func selects(s *metav1.LabelSelector, labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case metav1.LabelSelectorOpNotIn:
			if ok && slices.Contains(e.Values, v) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if !ok {
				return false
			}
		case metav1.LabelSelectorOpDoesNotExist:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// metaSelector is a Service's plain selector as a label selector.
func metaSelector(labels map[string]string) *metav1.LabelSelector {
	if len(labels) == 0 {
		return nil // a Service without a selector selects no pod
	}
	return &metav1.LabelSelector{MatchLabels: labels}
}

func TestDecodeIsStrict(t *testing.T) {
	const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n"
	tests := []struct {
		name    string
		stream  string
		wantErr string // empty: decodes
	}{
		{name: "valid", stream: deployment + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: d\n"},
		{name: "unknown field", stream: deployment + "spec:\n  replica: 2\n", wantErr: `unknown field "replica"`},
		{name: "misplaced field", stream: "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n      containerPort: 80\n", wantErr: `unknown field "containerPort"`},
		{name: "duplicate key", stream: deployment + "spec:\n  paused: true\n  paused: false\n", wantErr: `key "paused" already set`},
		{name: "unknown kind", stream: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", wantErr: "unexpected object v1 Pod"},
		{name: "old API version", stream: "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n", wantErr: "unexpected object"},
		{name: "same name twice", stream: deployment + "---\n" + deployment, wantErr: "two *v1.Deployment named d"},
		{name: "no name", stream: "apiVersion: v1\nkind: ConfigMap\n", wantErr: "without a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.stream))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("decode: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("decode error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
