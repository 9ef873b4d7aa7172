// Package deploy holds Moreid's container and Kubernetes deployment: the
// kustomize base and overlays beside this file, and a test that renders every
// overlay and checks what the manifests promise (deploy/README.md).
package deploy
