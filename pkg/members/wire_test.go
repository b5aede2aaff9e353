package members

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	got, ok := decodeMeta(encodeMeta(0xdeadbeef01020304))
	if !ok || got != 0xdeadbeef01020304 {
		t.Fatalf("decodeMeta(encodeMeta(x)) = %x, %v", got, ok)
	}
	for _, b := range [][]byte{nil, {}, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 1}, bytes.Repeat([]byte{1}, 10)} {
		if _, ok := decodeMeta(b); ok {
			t.Errorf("decodeMeta(%x) accepted foreign metadata", b)
		}
	}
}

func TestLeaveNoticeRoundTrip(t *testing.T) {
	name, inst, err := decodeLeaveNotice(encodeLeaveNotice("node-1.example", 42))
	if err != nil || name != "node-1.example" || inst != 42 {
		t.Fatalf("round trip = %q, %d, %v", name, inst, err)
	}
}

func TestDecodeLeaveNoticeRejectsMalformed(t *testing.T) {
	valid := encodeLeaveNotice("n", 1)
	tests := map[string][]byte{
		"empty":         nil,
		"header only":   valid[:noticeHdrLen],
		"wrong version": append([]byte{9}, valid[1:]...),
		"wrong kind":    append([]byte{noticeVersion, 9}, valid[2:]...),
		"zero instance": encodeLeaveNotice("n", 0),
		"name too long": encodeLeaveNotice(strings.Repeat("x", maxNameLen+1), 1),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := decodeLeaveNotice(b); !errors.Is(err, errNotice) {
				t.Errorf("decodeLeaveNotice(%x) error = %v, want errNotice", b, err)
			}
		})
	}
}

// FuzzDecodeLeaveNotice: any datagram a peer (or an attacker, without a key)
// sends as a user message must decode or be rejected, never panic, and what
// decodes must re-encode to the same bytes.
func FuzzDecodeLeaveNotice(f *testing.F) {
	f.Add(encodeLeaveNotice("node-a", 1))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, inst, err := decodeLeaveNotice(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeLeaveNotice(name, inst), b) {
			t.Fatalf("decoded %q/%d from %x does not re-encode", name, inst, b)
		}
	})
}

func TestParseMemberlistLine(t *testing.T) {
	tests := []struct{ in, msg, level string }{
		{"[DEBUG] memberlist: Failed UDP ping: b (timeout reached)\n", "Failed UDP ping: b (timeout reached)", "DEBUG"},
		{"[ERR] memberlist: Push/Pull with b failed: EOF", "Push/Pull with b failed: EOF", "ERR"},
		{"plain text\n", "plain text", ""},
		{"[unterminated", "[unterminated", ""},
	}
	for _, tt := range tests {
		msg, level := parseMemberlistLine([]byte(tt.in))
		if msg != tt.msg || level != tt.level {
			t.Errorf("parse(%q) = %q, %q; want %q, %q", tt.in, msg, level, tt.msg, tt.level)
		}
	}
}

func TestFailedProbe(t *testing.T) {
	for in, want := range map[string]string{
		"Suspect node-2 has failed, no acks received":  "node-2",
		"Suspect b has failed, no acks received":       "b",
		"Suspect b has failed":                         "",
		"Marking b as failed, suspect timeout reached": "",
	} {
		got, ok := failedProbe(in)
		if ok != (want != "") || got != want {
			t.Errorf("failedProbe(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
