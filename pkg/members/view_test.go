package members

import (
	"maps"
	"testing"
)

func TestView(t *testing.T) {
	type step struct {
		op       string // join, leave, notice
		name     string
		instance uint64
		changed  bool
	}
	tests := []struct {
		name  string
		steps []step
		alive []string
	}{
		{"join adds a member once", []step{
			{"join", "a", 1, true}, {"join", "a", 1, false},
		}, []string{"a"}},
		{"leave removes it", []step{
			{"join", "a", 1, true}, {"leave", "a", 0, true}, {"leave", "a", 0, false},
		}, nil},
		{"a metadata update of an alive member is no change", []step{
			{"join", "a", 1, true}, {"join", "a", 2, false},
		}, []string{"a"}},
		{"a notice removes the instance that sent it", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true},
		}, nil},
		{"a notice from an earlier process does not remove a restarted member", []step{
			{"join", "a", 1, true}, {"join", "a", 2, false}, {"notice", "a", 1, false},
		}, []string{"a"}},
		{"a late alive for the departed process does not bring it back", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true}, {"leave", "a", 0, false}, {"join", "a", 1, false},
		}, nil},
		{"the restarted process is accepted after a notice", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true}, {"join", "a", 2, true},
		}, []string{"a"}},
		{"a notice after memberlist's leave still blocks a late alive", []step{
			{"join", "a", 1, true}, {"leave", "a", 0, true}, {"notice", "a", 1, false}, {"join", "a", 1, false},
		}, nil},
		{"members without Herald metadata are never matched by notices", []step{
			{"join", "a", 0, true}, {"notice", "a", 0, false},
		}, []string{"a"}},
		{"members are independent", []step{
			{"join", "a", 1, true}, {"join", "b", 7, true}, {"notice", "a", 1, true}, {"join", "c", 3, true},
		}, []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			for i, s := range tt.steps {
				var got bool
				switch s.op {
				case "join":
					got = v.join(s.name, s.instance)
				case "leave":
					got = v.leave(s.name)
				case "notice":
					got = v.notice(s.name, s.instance)
				}
				if got != s.changed {
					t.Fatalf("step %d %s(%s, %d): changed = %v, want %v", i, s.op, s.name, s.instance, got, s.changed)
				}
			}
			want := map[string]bool{}
			for _, n := range tt.alive {
				want[n] = true
			}
			if got := v.names(); !maps.Equal(got, want) {
				t.Errorf("alive = %v, want %v", sorted(got), sorted(want))
			}
		})
	}
}
