package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

func TestEventNotesAreCutToTheApiserverLimitOnARuneBoundary(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"ascii 3000", strings.Repeat("a", 3000)},
		{"multi-byte 3000", strings.Repeat("é池🙂", 1000)},
		{"multi-byte at the cut", strings.Repeat("a", 1021) + strings.Repeat("🙂", 10)},
		{"short", "fits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EventNote(tc.in)
			if len(got) > MaxEventNote {
				t.Fatalf("%d bytes, want <= %d", len(got), MaxEventNote)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("not valid UTF-8: %q", got[len(got)-8:])
			}
			if len(tc.in) <= MaxEventNote {
				if got != tc.in {
					t.Fatalf("a short note changed: %q", got)
				}
				return
			}
			if !strings.HasSuffix(got, "…") || !strings.HasPrefix(tc.in, strings.TrimSuffix(got, "…")) {
				t.Fatalf("not a marked prefix: ...%q", got[len(got)-16:])
			}
			if len(got) < MaxEventNote-8 {
				t.Fatalf("cut too short: %d bytes", len(got))
			}
		})
	}
}

func TestOwnFinalizerAndPoolAnnotationWriteTriggersNoReconcile(t *testing.T) {
	bare := func(fin []string, ann map[string]string) *corev1.Service {
		s := &corev1.Service{}
		s.Finalizers, s.Annotations = fin, ann
		return s
	}
	pool := func(p string) map[string]string { return map[string]string{AnnotationAllocatedFromPool: p} }
	for _, tc := range []struct {
		name string
		o, n *corev1.Service
		own  bool
	}{
		{"finalizer and annotation added", bare(nil, nil), bare([]string{FinalizerCleanup}, pool("a")), true},
		{"annotation moved to another pool", bare([]string{FinalizerCleanup}, pool("a")), bare([]string{FinalizerCleanup}, pool("b")), true},
		{"nothing changed", bare([]string{FinalizerCleanup}, pool("a")), bare([]string{FinalizerCleanup}, pool("a")), true},
		{"finalizer removed by hand", bare([]string{FinalizerCleanup}, pool("a")), bare(nil, pool("a")), false},
		{"annotation removed by hand", bare([]string{FinalizerCleanup}, pool("a")), bare([]string{FinalizerCleanup}, nil), false},
		{"another annotation", bare([]string{FinalizerCleanup}, pool("a")), bare([]string{FinalizerCleanup}, map[string]string{AnnotationAllocatedFromPool: "a", "x": "y"}), false},
		{"another finalizer", bare(nil, nil), bare([]string{FinalizerCleanup, "other"}, pool("a")), false},
	} {
		if got := ownMetadataWrite(tc.o, tc.n); got != tc.own {
			t.Errorf("%s: ownMetadataWrite = %v, want %v", tc.name, got, tc.own)
		}
	}
}
