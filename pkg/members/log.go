package members

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger returns the *log.Logger memberlist (and its transport)
// write to. Memberlist logs every failed probe and push/pull, even its
// "[ERR]" lines are routine during a failure, so everything goes to slog at
// debug level, tagged component=memberlist with memberlist's own level kept
// as an attribute. What operators need (members joining, leaving, name
// conflicts) Members logs itself at info/warn.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{log: l.With("component", "memberlist")}, "", 0)
}

type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	n := len(p)
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return n, nil
	}
	msg, level := parseMemberlistLine(p)
	w.log.Debug(msg, "memberlist_level", level)
	return n, nil
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
