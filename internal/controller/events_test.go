package controller

import (
	"strings"
	"testing"
	"unicode/utf8"
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
