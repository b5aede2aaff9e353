#!/usr/bin/env bash
# Fails, showing the difference, when the committed deepcopy functions or CRD
# manifests are not what hack/update-codegen.sh makes from api/v1beta1 now.
# Generates into a scratch directory: the work tree is never modified.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

OUT_CRDS="$tmp/crds" OUT_API="$tmp/api" hack/update-codegen.sh

status=0
# CRDs: compare the whole directory, so a missing or extra file counts too.
if ! diff -ru deploy/crds "$tmp/crds"; then
  status=1
fi
if ! diff -u api/v1beta1/zz_generated.deepcopy.go "$tmp/api/zz_generated.deepcopy.go"; then
  status=1
fi
if ((status != 0)); then
  echo >&2
  echo "verify-codegen: generated files are stale (diff above: committed vs fresh); run hack/update-codegen.sh and commit the result" >&2
  exit 1
fi
echo "verify-codegen: deploy/crds and api/v1beta1/zz_generated.deepcopy.go are up to date"
