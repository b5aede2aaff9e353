#!/usr/bin/env bash
# Regenerates what is derived from api/v1beta1: the deepcopy functions
# (api/v1beta1/zz_generated.deepcopy.go) and the CRD manifests (deploy/crds/,
# one file per CRD). Run after any change to the API types; the result is
# committed, and hack/verify-codegen.sh fails when it is stale.
#
# OUT_CRDS and OUT_API redirect the output (verify-codegen.sh uses them to
# generate into a scratch directory without touching the tree).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

out_crds=${OUT_CRDS:-deploy/crds}
out_api=${OUT_API:-api/v1beta1}

# controller-gen comes from the tool directive in go.mod, so its version is
# pinned with the module and nothing is downloaded besides Go modules.
cg() { go tool controller-gen "$@"; }

mkdir -p "$out_crds" "$out_api"
# The object generator writes next to the sources; generate into a copy when
# asked to write elsewhere.
if [[ $out_api == api/v1beta1 ]]; then
  cg object:headerFile=hack/boilerplate.go.txt paths=./api/...
else
  cg object:headerFile=hack/boilerplate.go.txt paths=./api/... output:object:dir="$out_api"
fi

# Stale CRD files (a kind that was renamed or removed) must not linger.
rm -f "$out_crds"/lb.herald.dev_*.yaml
# crd:maxDescLen is left unset: descriptions are kept in full, since they are
# what `kubectl explain` shows.
cg crd paths=./api/... output:crd:dir="$out_crds"
# Bound the embedded label selectors so that the CEL rules on label keys fit
# the apiserver's cost budget.
go run ./hack/crdlimits "$out_crds"/lb.herald.dev_*.yaml
