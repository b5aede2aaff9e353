package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestConfigurationDocMatchesTheCRDs fails when docs/configuration.md was not
// regenerated after a change to the API (run `make generate`).
func TestConfigurationDocMatchesTheCRDs(t *testing.T) {
	root := filepath.Join("..", "..")
	want, err := render(filepath.Join(root, "deploy", "crds"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/configuration.md is stale: run `make generate`")
	}
	for _, field := range []string{"`spec.addresses[]`", "`spec.peerAddress`", "`spec.aggregationLengthV6`", "`status.availableIPv6`", "`spec.detectMultiplier`"} {
		if !bytes.Contains(got, []byte(field)) {
			t.Errorf("reference lacks %s", field)
		}
	}
}
