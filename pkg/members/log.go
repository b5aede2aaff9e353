package members

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// newMemberlistLogger returns the *log.Logger memberlist (and its transport)
// write to. Memberlist logs every failed probe and push/pull, even its
// "[ERR]" lines are routine during a failure, so everything goes to slog at
// debug level, tagged component=memberlist with memberlist's own level kept
// as an attribute. What operators need (members joining, leaving, name
// conflicts) Members logs itself at info/warn.
//
// It also reports this member's failed probes to probeFailed: memberlist has
// no hook for them, and the "Suspect <name> has failed, no acks received"
// line is written exactly when a probe by this member failed, just before
// memberlist suspects the peer. (TestReachableDropsPeersBeforeConviction
// fails if a memberlist upgrade changes that line.)
func newMemberlistLogger(l *slog.Logger, probeFailed func(peer string)) *log.Logger {
	return log.New(&slogWriter{log: l.With("component", "memberlist"), probeFailed: probeFailed}, "", 0)
}

type slogWriter struct {
	log         *slog.Logger
	probeFailed func(peer string)
}

func (w *slogWriter) Write(p []byte) (int, error) {
	n := len(p)
	debug := w.log.Enabled(context.Background(), slog.LevelDebug)
	if !debug && !bytes.Contains(p, []byte(suspectPrefix)) {
		return n, nil
	}
	msg, level := parseMemberlistLine(p)
	if peer, ok := failedProbe(msg); ok && w.probeFailed != nil {
		w.probeFailed(peer)
	}
	if debug {
		w.log.Debug(msg, "memberlist_level", level)
	}
	return n, nil
}

const (
	suspectPrefix = "Suspect "
	suspectSuffix = " has failed, no acks received"
)

// failedProbe recognizes memberlist's line for a failed probe of peer.
func failedProbe(msg string) (peer string, ok bool) {
	rest, ok := strings.CutPrefix(msg, suspectPrefix)
	if !ok {
		return "", false
	}
	if peer, ok = strings.CutSuffix(rest, suspectSuffix); !ok {
		return "", false
	}
	return peer, true
}

// parseMemberlistLine splits "[WARN] memberlist: text\n" into its text and
// level; lines in another shape are passed on whole.
func parseMemberlistLine(p []byte) (msg, level string) {
	p = bytes.TrimRight(p, "\n")
	if len(p) > 0 && p[0] == '[' {
		if end := bytes.IndexByte(p, ']'); end > 0 {
			level = string(p[1:end])
			p = bytes.TrimLeft(p[end+1:], " ")
		}
	}
	p = bytes.TrimPrefix(p, []byte("memberlist: "))
	return string(p), level
}
